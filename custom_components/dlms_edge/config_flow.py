"""Config flow: one entry per agent, found from its meters' retained `info` messages."""

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
    CONF_AGENT,
    CONF_EXCLUDED_OBJECTS,
    CONF_INFO,
    CONF_METER,
    CONF_METERS,
    CONF_NAME,
    CONF_OBJECTS,
    CONF_PREFIX,
    DEFAULT_PREFIX,
    DOMAIN,
    SCAN_SECONDS,
)
from .coordinator import DlmsEdgeConfigEntry, async_scan_agents, entry_data
from .models import InvalidPayload, MeterInfo, parse_discovery, valid_prefix
from .sensor import meter_descriptions

_LOGGER = logging.getLogger(__name__)


def _prefix_schema(default: str) -> vol.Schema:
    return vol.Schema({vol.Required(CONF_PREFIX, default=default): str})


def _meters_text(infos: list[MeterInfo]) -> str:
    return ", ".join(f"{info.title} ({info.unique_id})" for info in infos)


def entity_counts(infos: list[MeterInfo]) -> tuple[int, int]:
    """(entities, enabled by default) that setting up these meters creates.

    Per meter its sensors and its problem sensor; once the agent's connectivity sensor.
    """
    total = enabled = 1
    for info in infos:
        descriptions = meter_descriptions(info)
        total += len(descriptions) + 1
        enabled += sum(d.entity_registry_enabled_default for d in descriptions) + 1
    return total, enabled


class DlmsEdgeConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add an agent: from MQTT discovery, or picked among those seen under a prefix."""

    VERSION = 2

    def __init__(self) -> None:
        self._prefix = DEFAULT_PREFIX
        self._agent = ""
        self._infos: list[MeterInfo] = []
        self._found: dict[str, dict[str, MeterInfo]] = {}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: DlmsEdgeConfigEntry) -> DlmsEdgeOptionsFlow:
        return DlmsEdgeOptionsFlow()

    async def async_step_mqtt(self, discovery_info: MqttServiceInfo) -> ConfigFlowResult:
        """A retained `dlms/<agent>/<meter>/info` arrived (manifest `mqtt` topic).

        The flow is per agent: a configured agent adds its new meters by itself, and
        an ignored one stays ignored, whichever meter is announced.
        """
        try:
            prefix, info = parse_discovery(discovery_info.topic, discovery_info.payload)
        except InvalidPayload as err:
            _LOGGER.debug("Ignoring discovery on %s: %s", discovery_info.topic, err)
            return self.async_abort(reason="invalid_discovery_info")
        await self.async_set_unique_id(info.agent)
        self._abort_if_unique_id_configured()
        self._prefix, self._agent, self._infos = prefix, info.agent, [info]
        self.context["title_placeholders"] = {"name": info.agent}
        return await self.async_step_discovery_confirm()

    async def async_step_discovery_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask before adding a discovered agent."""
        if user_input is not None:
            return self._async_create_agent_entry()
        self._set_confirm_only()
        entities, enabled = entity_counts(self._infos)
        return self.async_show_form(
            step_id="discovery_confirm",
            description_placeholders={
                "agent": self._agent,
                "meters": _meters_text(self._infos),
                "entities": str(entities),
                "enabled": str(enabled),
            },
        )

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the topic prefix, then list the agents seen under it."""
        if not await mqtt.async_wait_for_mqtt_client(self.hass):
            return self.async_abort(reason="mqtt_not_available")
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                self._prefix = valid_prefix(user_input[CONF_PREFIX])
            except InvalidPayload:
                errors[CONF_PREFIX] = "invalid_prefix"
            else:
                seen = await async_scan_agents(self.hass, self._prefix, SCAN_SECONDS)
                configured = self._async_current_ids(include_ignore=False)
                self._found = {a: m for a, m in seen.items() if a not in configured}
                if self._found:
                    return await self.async_step_pick_agent()
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

    async def async_step_pick_agent(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose one of the agents found; choosing confirms."""
        if user_input is not None:
            self._agent = user_input[CONF_AGENT]
            self._infos = sorted(self._found[self._agent].values(), key=lambda i: i.unique_id)
            # The scan itself may have started a discovery flow for this agent (the
            # manifest subscribes to dlms/+/+/info); creating the entry aborts it.
            await self.async_set_unique_id(self._agent, raise_on_progress=False)
            self._abort_if_unique_id_configured()
            return self._async_create_agent_entry()
        options = [
            SelectOptionDict(value=agent, label=f"{agent}: {_meters_text(list(meters.values()))}")
            for agent, meters in sorted(self._found.items())
        ]
        return self.async_show_form(
            step_id="pick_agent",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_AGENT): SelectSelector(
                        SelectSelectorConfig(options=options, mode=SelectSelectorMode.LIST)
                    )
                }
            ),
            description_placeholders={"prefix": self._prefix},
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the topic prefix; the agent must be seen under the new one."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                prefix = valid_prefix(user_input[CONF_PREFIX])
            except InvalidPayload:
                errors[CONF_PREFIX] = "invalid_prefix"
            else:
                seen = await async_scan_agents(self.hass, prefix, SCAN_SECONDS)
                if entry.data[CONF_AGENT] not in seen:
                    errors["base"] = "agent_not_found"
                else:
                    # The entry's update listener reloads it on a new prefix.
                    self.hass.config_entries.async_update_entry(
                        entry, data={**entry.data, CONF_PREFIX: prefix}
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
    def _async_create_agent_entry(self) -> ConfigFlowResult:
        return self.async_create_entry(
            title=self._agent, data=entry_data(self._prefix, self._agent, self._infos)
        )


class DlmsEdgeOptionsFlow(OptionsFlow):
    """Choose which announced objects of each meter become entities."""

    def __init__(self) -> None:
        self._key = ""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        meters: dict[str, Any] = self.config_entry.data[CONF_METERS]
        if not meters:
            return self.async_abort(reason="no_meters")
        if len(meters) == 1:
            self._key = next(iter(meters))
            return await self.async_step_objects()
        if user_input is not None:
            self._key = user_input[CONF_METER]
            return await self.async_step_objects()
        options = [
            SelectOptionDict(value=key, label=f"{stored[CONF_NAME]} ({key})")
            for key, stored in sorted(meters.items())
        ]
        return self.async_show_form(
            step_id="init",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_METER): SelectSelector(
                        SelectSelectorConfig(options=options, mode=SelectSelectorMode.LIST)
                    )
                }
            ),
        )

    async def async_step_objects(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        stored = self.config_entry.data[CONF_METERS][self._key]
        info = MeterInfo.from_dict(stored[CONF_INFO])
        announced = [obj.obis for obj in info.objects]
        all_excluded: dict[str, list[str]] = self.config_entry.options.get(
            CONF_EXCLUDED_OBJECTS, {}
        )
        excluded = set(all_excluded.get(self._key, ()))
        if user_input is not None:
            selected = set(user_input[CONF_OBJECTS])
            # Keep exclusions of objects the meter does not announce right now.
            kept = {obis for obis in excluded if obis not in announced}
            hidden = {obis for obis in announced if obis not in selected}
            return self.async_create_entry(
                data={CONF_EXCLUDED_OBJECTS: {**all_excluded, self._key: sorted(kept | hidden)}}
            )
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
        return self.async_show_form(
            step_id="objects",
            data_schema=schema,
            description_placeholders={"meter": stored[CONF_NAME]},
        )
