"""Settings stored by earlier versions still load after dead fields were removed."""

from __future__ import annotations

from ml_connector.connections import SftpSettings


def test_stored_sftp_settings_with_the_old_connect_timeout_still_load() -> None:
    plain = {"host": "127.0.0.1", "port": 2222, "username": "u", "password": "pw", "connect_timeout_s": 15.0}
    settings = SftpSettings.from_plain(plain)
    assert settings.host == "127.0.0.1" and settings.password is not None and settings.password.reveal() == "pw"
    assert "connect_timeout_s" not in settings.to_plain()
