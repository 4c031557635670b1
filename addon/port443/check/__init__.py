"""`port443 check` and `rules test --live`: what a site's HTTPS is worth, graded."""
