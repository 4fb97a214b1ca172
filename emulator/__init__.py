"""Local emulator of the Azure endpoints the app uses: ARM (Network Watcher packet captures, compute reads,
resource listing) over HTTPS and the App Service managed-identity token endpoint, on 127.0.0.1.

The real, unmodified azure-mgmt-network / azure-mgmt-resource / azure-identity SDKs talk to it. See
``emulator/README.md``.
"""

from .captures import StoppedCapture
from .clock import Clock
from .core import FOREIGN_CREDENTIAL_ENV, Emulator, RequestRecord
from .errors import ArmError
from .faults import FaultRule, Faults
from .tls import ensure_certificate
from .world import Behaviour, Extension, Identity, World, WorldError

__all__ = [
    "FOREIGN_CREDENTIAL_ENV",
    "ArmError",
    "Behaviour",
    "Clock",
    "Emulator",
    "Extension",
    "FaultRule",
    "Faults",
    "Identity",
    "RequestRecord",
    "StoppedCapture",
    "World",
    "WorldError",
    "ensure_certificate",
]
