"""Local stand-ins for the systems ml-connector talks to: a Kinetic emulator and an SFTP server."""
