"""SFTP transport: asyncssh client with pinned host keys, atomic upload, stable listing,
verified download, moves. The embedded server for the sandbox and tests is in ``sandbox.sftp_server``."""

from .client import Listing, LocalFile, RemoteFile, SftpClient, SftpOptions
from .names import TempNaming, UnsafeNameError, check_remote_name

__all__ = [
    "Listing",
    "LocalFile",
    "RemoteFile",
    "SftpClient",
    "SftpOptions",
    "TempNaming",
    "UnsafeNameError",
    "check_remote_name",
]
