"""The analyst search page (`/`, `/p/{slug}`, `/web/*`) and offline API docs (`/docs`, `/redoc`)."""

from .routes import router

__all__ = ["router"]
