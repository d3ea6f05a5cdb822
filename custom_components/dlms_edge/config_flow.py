"""Config flow: one entry per meter, found from its retained `info` message."""

from __future__ import annotations

import logging
from typing import Any

import voluptuous as vol
from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigFlow, ConfigFlowResult, OptionsFlow
from homeassistant.core import callback
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo

from .const import (
    CONF_EXCLUDED_OBJECTS,
    CONF_INFO,
    CONF_METER,
    CONF_OBJECTS,
    CONF_PREFIX,
    DEFAULT_PREFIX,
    DOMAIN,
    SCAN_SECONDS,
)
from .coordinator import DlmsEdgeConfigEntry, async_scan_meters, entry_data
from .models import InvalidPayload, MeterInfo, parse_discovery, valid_prefix

_LOGGER = logging.getLogger(__name__)


def _prefix_schema(default: str) -> vol.Schema:
    return vol.Schema({vol.Required(CONF_PREFIX, default=default): str})


def _meter_label(info: MeterInfo) -> str:
    return f"{info.title} ({info.unique_id}, agent {info.agent})"


class DlmsEdgeConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a meter: from MQTT discovery, or picked among those seen under a prefix."""

    VERSION = 1

    def __init__(self) -> None:
        self._prefix = DEFAULT_PREFIX
        self._info: MeterInfo | None = None
        self._found: dict[str, MeterInfo] = {}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: DlmsEdgeConfigEntry) -> DlmsEdgeOptionsFlow:
        return DlmsEdgeOptionsFlow()

    async def async_step_mqtt(self, discovery_info: MqttServiceInfo) -> ConfigFlowResult:
        """A retained `dlms/<agent>/<meter>/info` arrived (manifest `mqtt` topic)."""
        try:
            prefix, info = parse_discovery(discovery_info.topic, discovery_info.payload)
        except InvalidPayload as err:
            _LOGGER.debug("Ignoring discovery on %s: %s", discovery_info.topic, err)
            return self.async_abort(reason="invalid_discovery_info")
        await self.async_set_unique_id(info.unique_id)
        entry = self.hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, info.unique_id)
        if entry is not None and entry.data[CONF_PREFIX] == prefix:
            # The meter may have moved to another agent or meter id: follow it. The
            # entry's update listener reloads it.
            self._abort_if_unique_id_configured(
                updates=entry_data(prefix, info), reload_on_update=False
            )
        self._abort_if_unique_id_configured()
        self._prefix, self._info = prefix, info
        self.context["title_placeholders"] = {"name": info.title}
        return await self.async_step_discovery_confirm()

    async def async_step_discovery_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask before adding a discovered meter."""
        assert self._info is not None
        if user_input is not None:
            return self._async_create_meter_entry(self._prefix, self._info)
        self._set_confirm_only()
        return self.async_show_form(
            step_id="discovery_confirm",
            description_placeholders={
                "name": self._info.title,
                "serial": self._info.unique_id,
                "agent": self._info.agent,
                "objects": str(len(self._info.objects)),
            },
        )

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the topic prefix, then list the meters seen under it."""
        if not await mqtt.async_wait_for_mqtt_client(self.hass):
            return self.async_abort(reason="mqtt_not_available")
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                self._prefix = valid_prefix(user_input[CONF_PREFIX])
            except InvalidPayload:
                errors[CONF_PREFIX] = "invalid_prefix"
            else:
                seen = await async_scan_meters(self.hass, self._prefix, SCAN_SECONDS)
                configured = self._async_current_ids(include_ignore=False)
                self._found = {uid: info for uid, info in seen.items() if uid not in configured}
                if self._found:
                    return await self.async_step_pick_meter()
                if seen:
                    return self.async_abort(reason="already_configured")
                errors["base"] = "no_meters_found"
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                _prefix_schema(DEFAULT_PREFIX), {CONF_PREFIX: self._prefix}
            ),
            errors=errors,
        )

    async def async_step_pick_meter(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose one of the meters found; choosing confirms."""
        if user_input is not None:
            info = self._found[user_input[CONF_METER]]
            # The scan itself may have started a discovery flow for this meter (the
            # manifest subscribes to dlms/+/+/info); creating the entry aborts it.
            await self.async_set_unique_id(info.unique_id, raise_on_progress=False)
            self._abort_if_unique_id_configured()
            return self._async_create_meter_entry(self._prefix, info)
        options = [
            SelectOptionDict(value=uid, label=_meter_label(info))
            for uid, info in sorted(self._found.items())
        ]
        return self.async_show_form(
            step_id="pick_meter",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_METER): SelectSelector(
                        SelectSelectorConfig(options=options, mode=SelectSelectorMode.LIST)
                    )
                }
            ),
            description_placeholders={"prefix": self._prefix},
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the topic prefix; the meter must be seen under the new one."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                prefix = valid_prefix(user_input[CONF_PREFIX])
            except InvalidPayload:
                errors[CONF_PREFIX] = "invalid_prefix"
            else:
                seen = await async_scan_meters(self.hass, prefix, SCAN_SECONDS)
                if (info := seen.get(entry.unique_id or "")) is None:
                    errors["base"] = "meter_not_found"
                else:
                    # The update listener reloads the entry.
                    self.hass.config_entries.async_update_entry(
                        entry, data=entry_data(prefix, info)
                    )
                    return self.async_abort(reason="reconfigure_successful")
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                _prefix_schema(entry.data[CONF_PREFIX]),
                user_input or {CONF_PREFIX: entry.data[CONF_PREFIX]},
            ),
            errors=errors,
            description_placeholders={"name": entry.title},
        )

    @callback
    def _async_create_meter_entry(self, prefix: str, info: MeterInfo) -> ConfigFlowResult:
        return self.async_create_entry(
            title=f"{info.title} {info.unique_id}", data=entry_data(prefix, info)
        )


class DlmsEdgeOptionsFlow(OptionsFlow):
    """Choose which announced objects become entities."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        info = MeterInfo.from_dict(self.config_entry.data[CONF_INFO])
        announced = [obj.obis for obj in info.objects]
        excluded = set(self.config_entry.options.get(CONF_EXCLUDED_OBJECTS, ()))
        if user_input is not None:
            selected = set(user_input[CONF_OBJECTS])
            # Keep exclusions of objects the meter does not announce right now.
            kept = {obis for obis in excluded if obis not in announced}
            hidden = {obis for obis in announced if obis not in selected}
            return self.async_create_entry(data={CONF_EXCLUDED_OBJECTS: sorted(kept | hidden)})
        options = [
            SelectOptionDict(value=obj.obis, label=f"{obj.name or obj.obis} ({obj.obis})")
            for obj in info.objects
        ]
        schema = vol.Schema(
            {
                vol.Optional(
                    CONF_OBJECTS, default=[obis for obis in announced if obis not in excluded]
                ): SelectSelector(
                    SelectSelectorConfig(
                        options=options, multiple=True, mode=SelectSelectorMode.LIST
                    )
                )
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema)
