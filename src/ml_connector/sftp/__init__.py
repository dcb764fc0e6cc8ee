"""SFTP transport: asyncssh client with pinned host keys, atomic upload, stable listing,
verified download, moves; and an embedded server for the sandbox and tests."""

from .client import Listing, LocalFile, RemoteFile, SftpClient, SftpOptions
from .names import TempNaming, UnsafeNameError, check_remote_name
from .server import EmbeddedSftpServer, SftpUser

__all__ = [
    "EmbeddedSftpServer",
    "Listing",
    "LocalFile",
    "RemoteFile",
    "SftpClient",
    "SftpOptions",
    "SftpUser",
    "TempNaming",
    "UnsafeNameError",
    "check_remote_name",
]
