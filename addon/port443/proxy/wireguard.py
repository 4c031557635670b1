"""WireGuard keys for `port443 run --wireguard`, and the client configuration a phone or laptop imports.

The keys file is mitmproxy's own WireGuard configuration (JSON with `server_key` and `client_key`, what
`--mode wireguard:PATH` reads), kept in port443's data directory with mode 0600, plus one key and tunnel
address per extra device under `devices`. Keys are X25519 (cryptography), as `wg genkey` makes them.
Nothing here logs or prints a private key except the client configuration it is asked for.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from port443.errors import Port443Error, UsageError

DEFAULT_PORT = 51820
DEFAULT_DEVICE = "default"
# mitmproxy's WireGuard mode answers DNS at 10.0.0.53 (with the gateway's resolver) and takes any tunnel
# address; the first client is 10.0.0.1 in its own configuration, further devices follow.
DNS = "10.0.0.53"
FIRST_ADDRESS = 1
MAX_DEVICES = 250
_RAW = serialization.Encoding.Raw


def default_keys_path() -> Path:
    """`wireguard.json` in port443's data directory (beside the insecure-site store)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("port443")) / "wireguard.json"


def generate_key() -> str:
    """A new private key, base64, clamped as Curve25519 wants (the form `wg genkey` prints)."""
    raw = bytearray(os.urandom(32))
    raw[0] &= 248
    raw[31] = (raw[31] & 127) | 64
    return base64.b64encode(bytes(raw)).decode()


def public_key(private: str) -> str:
    """The public key of a base64 private key.

    Raises:
        Port443Error: the key is not 32 bytes of base64.
    """
    try:
        raw = base64.b64decode(private, validate=True)
        key = X25519PrivateKey.from_private_bytes(raw)
    except ValueError as e:
        raise Port443Error(f"not a WireGuard private key ({e})") from e
    return base64.b64encode(key.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)).decode()


@dataclass
class Device:
    """One client: its private key and its address inside the tunnel."""

    private_key: str
    address: str


@dataclass
class WireGuardKeys:
    """The server's key and every device's; `client_key` is mitmproxy's one client (device "default")."""

    server_key: str
    client_key: str
    devices: dict[str, Device] = field(default_factory=dict)

    def device(self, name: str) -> Device:
        """A device by name (`default` is mitmproxy's own client)."""
        if name == DEFAULT_DEVICE:
            return Device(self.client_key, f"10.0.0.{FIRST_ADDRESS}")
        return self.devices[name]

    def peer_public_keys(self) -> list[str]:
        """Every device's public key, mitmproxy's client first: the peers the server accepts."""
        return [public_key(self.client_key), *(public_key(d.private_key) for d in self.devices.values())]

    def to_json(self) -> str:
        """The file's text: mitmproxy's two keys, then port443's devices."""
        devices = {n: {"private_key": d.private_key, "address": d.address} for n, d in self.devices.items()}
        body = {"server_key": self.server_key, "client_key": self.client_key, "devices": devices}
        return json.dumps(body, indent=4) + "\n"


def parse_keys(text: str, *, source: str) -> WireGuardKeys:
    """Read a keys file.

    Raises:
        Port443Error: naming the file and what is wrong with it.
    """
    try:
        data = json.loads(text)
        devices = {
            str(name): Device(str(d["private_key"]), str(d["address"]))
            for name, d in dict(data.get("devices") or {}).items()
        }
        keys = WireGuardKeys(str(data["server_key"]), str(data["client_key"]), devices)
        keys.peer_public_keys()  # every key must be usable, or the server would fail at start
        public_key(keys.server_key)
    except (ValueError, KeyError, TypeError, AttributeError, Port443Error) as e:
        raise Port443Error(f"{source}: not a WireGuard keys file ({type(e).__name__}: {e})") from e
    return keys


def load_or_create(path: Path) -> WireGuardKeys:
    """The keys in `path`, created (mode 0600, new keys) when the file does not exist.

    Raises:
        Port443Error: the file cannot be read, written or parsed.
    """
    try:
        return parse_keys(path.read_text(), source=str(path))
    except FileNotFoundError:
        pass
    except OSError as e:
        raise Port443Error(f"{path}: cannot read the WireGuard keys ({e.strerror})") from e
    keys = WireGuardKeys(generate_key(), generate_key())
    try:
        write_keys(path, keys, create=True)
    except FileExistsError:  # another process created it first: use theirs
        return parse_keys(path.read_text(), source=str(path))
    return keys


def write_keys(path: Path, keys: WireGuardKeys, *, create: bool = False) -> None:
    """Write the keys file readable by its owner only (0600), atomically.

    Raises:
        FileExistsError: `create` and the file exists.
        Port443Error: the file cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if create:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(keys.to_json())
            return
        temp = path.with_name(path.name + ".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(keys.to_json())
        _keep_owner(path, temp)
        os.replace(temp, path)
    except FileExistsError:
        raise
    except OSError as e:
        raise Port443Error(f"{path}: cannot write the WireGuard keys ({e.strerror})") from e


def _keep_owner(path: Path, temp: Path) -> None:
    """Root adding a device to the service's file must leave it the service's (it runs as its own user)."""
    try:
        st = path.stat()
        if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (0, 0):
            os.chown(temp, st.st_uid, st.st_gid)
    except FileNotFoundError:
        pass


def add_device(keys: WireGuardKeys, name: str) -> Device:
    """The device `name`, given a new key and the next free tunnel address when it is new.

    Raises:
        UsageError: the name is not a short word, or there are too many devices.
    """
    if name == DEFAULT_DEVICE or name in keys.devices:
        return keys.device(name)
    if not (0 < len(name) <= 32 and name.replace("-", "").replace("_", "").isalnum() and name.isascii()):
        raise UsageError(f"--device {name!r}: use a short name of letters, digits, - and _")
    used = {int(d.address.rsplit(".", 1)[1]) for d in keys.devices.values()} | {FIRST_ADDRESS}
    free = [n for n in range(FIRST_ADDRESS + 1, MAX_DEVICES + 2) if n not in used and n != 53]
    if not free:
        raise UsageError(f"--device {name!r}: already {MAX_DEVICES} devices")
    device = Device(generate_key(), f"10.0.0.{free[0]}")
    keys.devices[name] = device
    return device


def parse_endpoint(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]` or `[v6]:port` (a bare IPv6 address too).

    Raises:
        UsageError: naming the value.
    """
    host, port = text.strip(), str(default_port)
    if host.startswith("["):
        inner, _, rest = host[1:].partition("]")
        host, port = inner, rest[1:] if rest.startswith(":") else (rest or port)
    elif host.count(":") == 1:
        host, port = host.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c in host for c in " /[]"):
        raise UsageError(f"--endpoint {text!r}: expected HOST or HOST:PORT ([ADDRESS]:PORT for IPv6)")
    return host, int(port)


def guess_endpoint_host() -> str | None:
    """This machine's address on its default route, or None (no packet is sent: a UDP connect only routes)."""
    for family, target in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((target, 9))
                address = str(s.getsockname()[0])
        except OSError:
            continue
        if address and not address.startswith(("127.", "::1", "fe80")):
            return address
    return None


def client_config(keys: WireGuardKeys, device: str, endpoint: tuple[str, int]) -> str:
    """The `[Interface]`/`[Peer]` configuration for `device`, as wg-quick and the WireGuard apps read it."""
    entry = keys.device(device)
    host, port = endpoint
    shown = f"[{host}]" if ":" in host else host
    return (
        f"# port443 WireGuard client: device {device}\n"
        "[Interface]\n"
        f"PrivateKey = {entry.private_key}\n"
        f"Address = {entry.address}/32\n"
        f"DNS = {DNS}\n"
        "\n"
        "[Peer]\n"
        f"PublicKey = {public_key(keys.server_key)}\n"
        "AllowedIPs = 0.0.0.0/0\n"
        f"Endpoint = {shown}:{port}\n"
    )
