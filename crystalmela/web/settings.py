"""Service settings: from arguments, else ``CRYSTALMELA_*`` environment variables, else defaults."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class WebSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Field(Path("crystalmela-data"), description="uploads, the SQLite file, the secret")
    database_url: str | None = Field(None, description="any SQLAlchemy URL; default SQLite in data_dir")
    max_upload_mb: float = Field(20.0, gt=0, description="per file")
    max_files: int = Field(20, ge=1, description="per upload")
    max_request_mb: float = Field(100.0, gt=0, description="one upload's whole request body, all files "
                                                           "together; enforced while it streams in")
    api_docs: bool = Field(True, description="Swagger UI at /docs and the schema at /openapi.json")
    secure_cookies: bool = Field(False, description="send the session cookie over HTTPS only")
    secret_key: str | None = Field(None, description="signs session cookies; default: kept in data_dir")

    @classmethod
    def from_env(cls, **overrides) -> "WebSettings":
        env = {
            "data_dir": os.environ.get("CRYSTALMELA_DATA_DIR"),
            "database_url": os.environ.get("CRYSTALMELA_DATABASE_URL"),
            "max_upload_mb": os.environ.get("CRYSTALMELA_MAX_UPLOAD_MB"),
            "max_request_mb": os.environ.get("CRYSTALMELA_MAX_REQUEST_MB"),
            "api_docs": os.environ.get("CRYSTALMELA_API_DOCS"),
            "secure_cookies": os.environ.get("CRYSTALMELA_SECURE_COOKIES"),
            "secret_key": os.environ.get("CRYSTALMELA_SECRET_KEY"),
        }
        values = {k: v for k, v in env.items() if v is not None}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'crystalmela.db').resolve()}"

    def secret(self) -> str:
        """The cookie-signing key: the setting, else one generated once and kept (mode 600) in
        data_dir, so sessions survive a restart."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()
