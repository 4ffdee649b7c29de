"""routerd's admin interface: a unix-socket server speaking the channel protocol.

``routerctl`` is its client. The request/reply messages are in :mod:`.protocol`, the
socket path rules in :mod:`.socket_path`, the peer check in :mod:`.peercred`.
"""

from .peercred import PeerCredentials as PeerCredentials
from .peercred import is_allowed as is_allowed
from .peercred import peer_credentials as peer_credentials
from .protocol import OPS as OPS
from .protocol import AdminRequestError as AdminRequestError
from .socket_path import AdminSocketError as AdminSocketError
from .socket_path import default_socket_path as default_socket_path
