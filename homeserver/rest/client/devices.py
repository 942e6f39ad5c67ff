"""``/devices``, ``/devices/{deviceId}``, ``/delete_devices``."""

from __future__ import annotations

from typing import Any

from homeserver.api.models.auth import UiaBody
from homeserver.api.models.devices import DeleteDevicesBody, UpdateDeviceBody
from homeserver.handlers.devices import DeviceHandler
from homeserver.handlers.ui_auth import UserInteractiveAuth
from homeserver.http.auth import RequestAuth
from homeserver.http.models import parse_body, parse_value
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route


class DevicesServlet:
    def __init__(self, auth: RequestAuth, ui_auth: UserInteractiveAuth, devices: DeviceHandler) -> None:
        self.auth = auth
        self.ui_auth = ui_auth
        self.devices = devices

    def register(self, router: Router) -> None:
        add_route(router, "client", "GET", "/devices", self.on_list, "devices")
        add_route(router, "client", "GET", "/devices/{device_id}", self.on_get, "device")
        add_route(router, "client", "PUT", "/devices/{device_id}", self.on_put, "device_put")
        add_route(router, "client", "DELETE", "/devices/{device_id}", self.on_delete, "device_delete")
        add_route(router, "client", "POST", "/delete_devices", self.on_delete_many, "delete_devices")

    async def on_list(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, {"devices": await self.devices.get_devices(requester.user_id)}

    async def on_get(self, request: SupRequest, device_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.devices.get_device(requester.user_id, device_id)

    async def on_put(self, request: SupRequest, device_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        body = parse_body(request, UpdateDeviceBody, optional=True)
        if "display_name" in body.model_fields_set:
            await self.devices.rename(requester.user_id, device_id, body.display_name)
        else:
            await self.devices.get_device(requester.user_id, device_id)
        return 200, {}

    async def on_delete(self, request: SupRequest, device_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        body = parse_body(request, UiaBody, optional=True)
        await self.devices.get_device(requester.user_id, device_id)  # 404 before asking for auth
        await self.ui_auth.check(body.uia_body(), "delete_device", requester=requester)
        await self.devices.delete_devices(requester.user_id, [device_id])
        return 200, {}

    async def on_delete_many(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        body = request.json()
        wanted = parse_value(body, DeleteDevicesBody)
        await self.ui_auth.check(body, "delete_devices", requester=requester)
        await self.devices.delete_devices(requester.user_id, wanted.devices)
        return 200, {}
