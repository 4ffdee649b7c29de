"""routerd's admin interface: a unix-socket server speaking the channel protocol.

``routerctl`` is its client. Embedding::

    bus = EventBus()
    async with router.open(plugins=...) as r, trio.open_nursery() as nursery:
        path = await nursery.start(partial(serve_admin, r, None, events=bus))

The request/reply messages are in :mod:`.protocol` (and docs/PROTOCOL.md), the
socket path rules in :mod:`.socket_path`, the peer check in :mod:`.peercred`, the
client in :mod:`.client`, and the text views routerctl prints in :mod:`.render`.
"""

from .client import AdminClient as AdminClient
from .client import AdminClientError as AdminClientError
from .client import AdminConnectError as AdminConnectError
from .client import AdminConnectionLost as AdminConnectionLost
from .client import AdminError as AdminError
from .client import connect_admin as connect_admin
from .peercred import PeerCredentials as PeerCredentials
from .peercred import is_allowed as is_allowed
from .peercred import peer_credentials as peer_credentials
from .protocol import OPS as OPS
from .protocol import AdminRequestError as AdminRequestError
from .server import AdminServer as AdminServer
from .server import serve_admin as serve_admin
from .socket_path import AdminSocketError as AdminSocketError
from .socket_path import default_socket_path as default_socket_path

__all__ = [
    "OPS",
    "AdminClient",
    "AdminClientError",
    "AdminConnectError",
    "AdminConnectionLost",
    "AdminError",
    "AdminRequestError",
    "AdminServer",
    "AdminSocketError",
    "PeerCredentials",
    "connect_admin",
    "default_socket_path",
    "is_allowed",
    "peer_credentials",
    "serve_admin",
]
