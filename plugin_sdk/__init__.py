"""plugin_sdk: everything a chanrouter plugin author needs, the wire protocol included.

This package never imports ``router``: a plugin depends on the SDK alone.
"""

from ._options import split_option as split_option
from ._patterns import is_glob as is_glob
from ._patterns import type_matches as type_matches
from .info import OnError as OnError
from .info import PluginInfo as PluginInfo
from .info import PluginInfoError as PluginInfoError
from .message import Headers as Headers
from .message import Message as Message
from .message import MessageFormatError as MessageFormatError
from .plugin import OptionError as OptionError
from .plugin import Plugin as Plugin
from .plugin import PluginDefinitionError as PluginDefinitionError
from .plugin import handles as handles
from .reply import Reply as Reply
from .reply import Verdict as Verdict
from .reply import drop as drop
from .reply import emit as emit
from .reply import error as error
from .reply import passthrough as passthrough
from .reply import replace as replace


def run(plugin_class: type[Plugin]) -> None:
    """Serve ``plugin_class`` over FD 3/4 when this script was started by routerd.

    Call it from a plugin script's ``if __name__ == "__main__":`` block; the option
    string is ``sys.argv[1]``. Started by hand (without ``CHANROUTER_PLUGIN=1``) it
    says so and exits 2. Imported lazily so ``import plugin_sdk`` stays free of trio.
    """
    from .runner import run as _run

    _run(plugin_class)
