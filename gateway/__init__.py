"""Celeriac's HTTP gateway: a Starlette ASGI service over the SDK's wire protocol."""

from gateway.app import create_app, create_app_from_env

__all__ = ["create_app", "create_app_from_env"]
