"""Object sets of the simulated meters: ``generic`` and ``t210d``.

Both serve the same measurement objects (a Sagemcom T-210D-like layout: the OBIS codes
of the Austrian and IDIS companion specifications); they differ in identity and in what
the association layer will demand of the management client. Access rights, chosen like
the IDIS meters we know (and documented here because installers ask):

========================  ====================================  ===========================
object                    public client (SAP 16)                management client (SAP 1)
========================  ====================================  ===========================
0.0.40.0.0.255 current    read (its own object list)            read; method 1 (HLS pass 3)
0.0.40.0.1.255 public     read                                  read
0.0.40.0.2.255 mgmt       --                                    read
0.0.42.0.0.255 LDN        read                                  read
0.0.96.1.0.255 serial     read                                  read
1.0.0.2.0.255 firmware    read                                  read
0.0.96.1.1.255 device id  read                                  read
0.0.1.0.0.255 clock       read                                  read; write time; shift_time
0.0.43.1.0.255 frame cnt  read                                  read
0.0.43.0.0.255 security   read; methods 6, 7 (certificates)     read; methods 1..8
measurement registers     read (generic profile only)           read
1.0.1.6.0.255 max demand  read (generic profile only)           read
load profile              read (generic profile only)           read; reset
event log                 --                                    read
power failure log         --                                    read
disconnect control        --                                    read; write mode; methods
push setup                --                                    read; write destination; push
========================  ====================================  ===========================

A method is advertised (and callable) only when an implementation exists: the
association and security layers register theirs in :attr:`SimulatedMeter.methods`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.apdu.results import ActionResult, DataAccessResult
from edge_agent.dlms.cosem.units import NO_UNIT, ScalerUnit, unit_code
from edge_agent.dlms.encoding.axdr import (
    Array,
    BitString,
    DoubleLongUnsigned,
    Enum,
    Integer,
    Long,
    LongUnsigned,
    OctetString,
    Structure,
    Unsigned,
)
from edge_agent.dlms.encoding.date_time import DAY_LAST, CosemDateTime
from edge_agent.dlms.errors import ConfigError
from edge_agent.dlms.secret import Secret
from edge_agent.simulator import event_log
from edge_agent.simulator.demand import MaximumDemand
from edge_agent.simulator.loadprofile import (
    CLOCK_CAPTURE,
    CaptureObject,
    Column,
    LoadProfileSource,
    ProfileBuffer,
    amr_status,
    point_in_time,
)
from edge_agent.simulator.model import SLOT_SECONDS, Channel, Meter, Tariff
from edge_agent.simulator.objects import (
    AssociationContext,
    Attribute,
    CosemObject,
    MethodRegistry,
    ObjectView,
    Refused,
    Request,
    Rights,
    rights,
)
from edge_agent.simulator.power_failure_log import power_failure_log
from edge_agent.simulator.security_setup_server import MeterKeyState, SecuritySetupServer


def ln(obis: str) -> bytes:
    """``"1.0.1.8.0.255"`` -> the 6-byte logical name."""
    return bytes(int(part) for part in obis.split("."))


CURRENT_ASSOCIATION = ln("0.0.40.0.0.255")
CLOCK = ln("0.0.1.0.0.255")
SECURITY_SETUP = ln("0.0.43.0.0.255")
LOAD_PROFILE = ln("1.0.99.1.0.255")
DISCONNECT_CONTROL = ln("0.0.96.3.10.255")
PUSH_SETUP = ln("0.0.25.9.0.255")
LOAD_PROFILE_CAPACITY = 96 * 224  # 32 weeks of 15-minute rows: both EU DST changes always inside
STEP = timedelta(seconds=SLOT_SECONDS)

# Mechanism ids (Green Book 9.4.2.2.3) of the roles below.
MECHANISM_NONE, MECHANISM_LOW, MECHANISM_HLS_GMAC = 0, 1, 5


@dataclass(frozen=True, slots=True)
class ClientRole:
    """One client the meter knows: its SAP, authentication, and its Association LN."""

    name: str
    client_sap: int
    association: bytes  # logical name of this client's Association LN instance
    mechanism_id: int
    password: Secret | None = None  # LLS only


@dataclass(slots=True)
class PushState:
    """Attributes of Push setup (class 40, version 0) that a client may change."""

    destination: bytes = b"127.0.0.1:4059"
    transport_service: int = 0  # TCP
    message_type: int = 0  # A-XDR encoded xDLMS APDU


def _typed(value: Any, *types: type, what: str) -> Any:
    if not isinstance(value, types) or isinstance(value, bool) != (bool in types):
        raise Refused(DataAccessResult.TYPE_UNMATCHED,
                      f"{what} must be {' or '.join(t.__name__ for t in types)}, "
                      f"got {type(value).__name__}")
    return value


class SimulatedMeter:
    """A meter's objects, client roles and method registry, over one :class:`Meter`."""

    def __init__(self, meter: Meter, *, profile: str, manufacturer: str, serial: str,
                 logical_device_name: bytes, system_title: bytes, firmware: bytes,
                 device_id: bytes, roles: tuple[ClientRole, ...]) -> None:
        self.meter = meter
        self.profile = profile
        self.manufacturer = manufacturer
        self.serial = serial
        self.logical_device_name = logical_device_name
        self.system_title = system_title
        self.firmware = firmware
        self.device_id = device_id
        self.roles = {role.client_sap: role for role in roles}
        self.methods = MethodRegistry()
        # Keyless until the station attaches the installation's keys
        # (security_setup.attach_security_setup); the suite is the station's to say.
        self.security_setup = SecuritySetupServer(MeterKeyState(system_title, security_suite=0))
        self.push = PushState()
        self.objects: dict[bytes, CosemObject] = {}
        self._rights: dict[str, dict[bytes, Rights]] = {role.name: {} for role in roles}
        self._build()

    @property
    def security(self) -> MeterKeyState:
        """The keys, certificates, policy and suite of the Security setup object."""
        return self.security_setup.state

    # --- views ----------------------------------------------------------------------

    def role(self, client_sap: int) -> ClientRole:
        try:
            return self.roles[client_sap]
        except KeyError:
            known = ", ".join(f"{sap} ({r.name})" for sap, r in sorted(self.roles.items()))
            raise ConfigError(f"this meter has no client SAP {client_sap}; it knows {known}") \
                from None

    def view_for(self, client_sap: int) -> ObjectView:
        """The objects and rights of ``client_sap``'s association, in object-list order."""
        table = self._rights[self.role(client_sap).name]
        return ObjectView(tuple((obj, self._advertised(obj, table[name]))
                                for name, obj in self.objects.items() if name in table))

    def _advertised(self, obj: CosemObject, granted: Rights) -> Rights:
        methods = {m: a for m, a in granted.methods.items() if self.methods.find(obj, m)}
        return Rights(granted.attributes, methods)

    def _add(self, obj: CosemObject, **grants: Rights) -> None:
        self.objects[obj.logical_name] = obj
        for role, granted in grants.items():
            self._rights[role][obj.logical_name] = granted

    # --- the object set ----------------------------------------------------------------

    def _build(self) -> None:
        meter = self.meter
        self._add(self._association(CURRENT_ASSOCIATION, None),
                  public=rights(read=(2, 3, 4, 5, 6, 8, 9)),
                  management=rights(read=(2, 3, 4, 5, 6, 8, 9), methods=(1, 2)))
        for role in self.roles.values():
            grants = {r.name: rights(read=(2, 3, 4, 5, 6, 8, 9)) for r in self.roles.values()
                      if r.name == "management" or r is role}
            self._add(self._association(role.association, role), **grants)
        for obis, value in (("0.0.42.0.0.255", self.logical_device_name),
                            ("0.0.96.1.0.255", self.serial.encode("ascii")),
                            ("1.0.0.2.0.255", self.firmware),
                            ("0.0.96.1.1.255", self.device_id)):
            self._add(_data(ln(obis), lambda r, v=value: OctetString(v)),
                      public=rights(read=(2,)), management=rights(read=(2,)))
        self._add(self._clock(), public=rights(read=tuple(range(2, 10))),
                  management=rights(read=tuple(range(2, 10)), write=(2,), methods=(1, 6)))
        self._add(_data(ln("0.0.43.1.0.255"),
                        lambda r: DoubleLongUnsigned(meter.invocation_counter)),
                  public=rights(read=(2,)), management=rights(read=(2,)))
        self._add(self.security_setup.cosem_object(SECURITY_SETUP), public=rights(read=(2, 3, 4, 5, 6), methods=(6, 7)),
                  management=rights(read=(2, 3, 4, 5, 6), methods=tuple(range(1, 9))))
        # The generic meter lets its public client read the measurements (as many
        # household meters do); the T-210D keeps them for the management client.
        public_reads = self.profile == "generic"
        for obj in self._registers():
            self._add(obj, management=rights(read=(2, 3)),
                      **({"public": rights(read=(2, 3))} if public_reads else {}))
        self.maximum_demand = MaximumDemand(meter)
        self._add(self.maximum_demand.cosem_object(), management=rights(read=(2, 3, 4, 5)),
                  **({"public": rights(read=(2, 3, 4, 5))} if public_reads else {}))
        self._add(self._load_profile(), management=rights(read=tuple(range(2, 9)),
                                                          methods=(1,)),
                  **({"public": rights(read=tuple(range(2, 9)))} if public_reads else {}))
        self._add(_data(ln("0.0.96.10.1.255"), lambda r: Unsigned(amr_status(
            meter, meter.installed + (r.meter_now - meter.installed) // STEP * STEP))),
            management=rights(read=(2,)))
        log, code = event_log.event_log_objects(meter)
        self._add(log, management=rights(read=tuple(range(2, 9))))
        self._add(power_failure_log(meter), management=rights(read=tuple(range(2, 9))))
        self._add(code, management=rights(read=(2,)))
        self._add(self._disconnect_control(),
                  management=rights(read=(2, 3, 4), write=(4,), methods=(1, 2)))
        self._add(self._push_setup(), management=rights(read=tuple(range(2, 8)), write=(3,),
                                                        methods=(1,)))

    def _registers(self) -> list[CosemObject]:
        meter = self.meter
        wh, varh = unit_code("Wh"), unit_code("varh")

        def energy(channel: Channel, tariff: Tariff | None = None):
            return lambda world: DoubleLongUnsigned(int(meter.energy(channel, world, tariff)))

        def reactive(channel: Channel):
            return lambda world: DoubleLongUnsigned(int(meter.reactive_energy(channel, world)))

        table: list[tuple[str, Callable[[datetime], Any], int, int]] = [
            ("1.0.1.8.0.255", energy(Channel.IMPORT), 0, wh),
            ("1.0.2.8.0.255", energy(Channel.EXPORT), 0, wh),
            ("1.0.3.8.0.255", reactive(Channel.IMPORT), 0, varh),
            ("1.0.4.8.0.255", reactive(Channel.EXPORT), 0, varh),
            ("1.0.1.8.1.255", energy(Channel.IMPORT, Tariff.T1), 0, wh),
            ("1.0.1.8.2.255", energy(Channel.IMPORT, Tariff.T2), 0, wh),
            ("1.0.2.8.1.255", energy(Channel.EXPORT, Tariff.T1), 0, wh),
            ("1.0.2.8.2.255", energy(Channel.EXPORT, Tariff.T2), 0, wh),
            ("1.0.1.7.0.255", lambda w: DoubleLongUnsigned(round(meter.power(Channel.IMPORT, w))),
             0, unit_code("W")),
            ("1.0.2.7.0.255", lambda w: DoubleLongUnsigned(round(meter.power(Channel.EXPORT, w))),
             0, unit_code("W")),
            ("1.0.14.7.0.255", lambda w: LongUnsigned(round(meter.frequency(w) * 100)), -2,
             unit_code("Hz")),
            ("1.0.13.7.0.255", lambda w: Long(round(meter.total_power_factor(w) * 1000)), -3,
             NO_UNIT),
        ]
        for phase, (volts, amps, pf) in enumerate((("32", "31", "33"), ("52", "51", "53"),
                                                   ("72", "71", "73"))):
            table += [
                (f"1.0.{volts}.7.0.255",
                 lambda w, p=phase: LongUnsigned(round(meter.voltage(p, w) * 10)), -1,
                 unit_code("V")),
                (f"1.0.{amps}.7.0.255",
                 lambda w, p=phase: LongUnsigned(round(meter.current(p, w) * 100)), -2,
                 unit_code("A")),
                (f"1.0.{pf}.7.0.255",
                 lambda w, p=phase: Long(round(meter.power_factor(p, w) * 1000)), -3, NO_UNIT),
            ]
        self.register_values = {ln(obis): value for obis, value, _, _ in table}
        return [_register(ln(obis), value, ScalerUnit(scaler, unit).to_axdr())
                for obis, value, scaler, unit in table]

    def _load_profile(self) -> CosemObject:
        meter = self.meter
        source = LoadProfileSource(meter, LOAD_PROFILE_CAPACITY)
        values = self.register_values

        def register(obis: str) -> Column:
            value = values[ln(obis)]
            return Column(CaptureObject(3, ln(obis), 2),
                          lambda t, r: value(meter.to_world(t)))

        buffer = ProfileBuffer(source, (
            Column(CLOCK_CAPTURE, lambda t, r: OctetString(meter.cosem_time(t).encode())),
            Column(CaptureObject(1, ln("0.0.96.10.1.255"), 2),
                   lambda t, r: Unsigned(amr_status(meter, t))),
            register("1.0.1.8.0.255"), register("1.0.2.8.0.255"),
            register("1.0.3.8.0.255"), register("1.0.4.8.0.255"),
        ), capture_period=900, profile_entries=LOAD_PROFILE_CAPACITY,
            local_to_utc=meter.local_to_utc)
        self.load_profile = buffer
        return buffer.cosem_object(LOAD_PROFILE, source.reset)

    def _clock(self) -> CosemObject:
        meter = self.meter

        def read_time(request: Request) -> OctetString:
            return OctetString(meter.cosem_time(request.meter_now).encode())

        def write_time(request: Request, value: Any) -> None:
            when = point_in_time(value, "the clock takes a date-time of one point in time")
            meter.set_clock(meter.local_to_utc(when) if when.tzinfo is None else when)

        def shift_time(request: Request, seconds: Any) -> None:
            # Blue Book 4.5.1: shift_time (data: long, -900..900 s).
            _typed(seconds, int, what="shift_time's argument")
            if not -900 <= seconds <= 900:
                raise Refused(ActionResult.OTHER_REASON,
                              f"shift_time takes -900..900 s, got {seconds}")
            meter.set_clock(request.meter_now + timedelta(seconds=int(seconds)))

        def adjust_to_quarter(request: Request, parameter: Any) -> None:
            now = request.meter_now
            quarter = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0)
            if now - quarter >= timedelta(minutes=7, seconds=30):
                quarter += timedelta(minutes=15)
            meter.set_clock(quarter)

        def dst_rule(month: int, hour: int) -> OctetString:
            # Recurring pattern: last Sunday of the month (Blue Book 4.1.6.1, day 0xFE).
            return OctetString(CosemDateTime(None, month, DAY_LAST, 7, hour, 0, 0, 0, None,
                                             None).encode())

        return CosemObject(8, 0, CLOCK, {
            2: Attribute(get=read_time, set=write_time),
            3: Attribute(get=lambda r: Long(-meter.std_offset_minutes)),
            4: Attribute(get=lambda r: Unsigned(int(meter.clock_status(r.meter_now)))),
            5: Attribute(get=lambda r: dst_rule(3, 2)),
            6: Attribute(get=lambda r: dst_rule(10, 3)),
            7: Attribute(get=lambda r: Integer(60)),
            8: Attribute(get=lambda r: meter.eu_dst),
            9: Attribute(get=lambda r: Enum(1)),  # clock_base: internal crystal
        }, {1: adjust_to_quarter, 6: shift_time})

    def _disconnect_control(self) -> CosemObject:
        meter = self.meter

        def write_mode(request: Request, value: Any) -> None:
            _typed(value, int, what="control_mode")
            if not 0 <= value <= 6:
                raise Refused(DataAccessResult.OTHER_REASON,
                              f"control_mode is 0..6 (Blue Book 4.5.8), got {value}")
            meter.control_mode = int(value)

        def method(action: Callable[[], bool]):
            def invoke(request: Request, parameter: Any) -> None:
                _typed(parameter, int, what="the method's argument (integer 0)")
                if not action():
                    raise Refused(ActionResult.OTHER_REASON,
                                  f"control_mode {meter.control_mode} forbids this transition")
            return invoke

        return CosemObject(70, 0, DISCONNECT_CONTROL, {
            2: Attribute(get=lambda r: meter.output_state),
            3: Attribute(get=lambda r: Enum(meter.control_state)),
            4: Attribute(get=lambda r: Enum(meter.control_mode), set=write_mode),
        }, {1: method(meter.remote_disconnect), 2: method(meter.remote_reconnect)})

    def _push_setup(self) -> CosemObject:
        push = self.push
        pushed = [CaptureObject(40, PUSH_SETUP, 1), CaptureObject(8, CLOCK, 2)] + [
            CaptureObject(3, ln(obis), 2) for obis in (
                "1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.1.7.0.255", "1.0.2.7.0.255")]

        def write_destination(request: Request, value: Any) -> None:
            if not (isinstance(value, tuple) and len(value) == 3
                    and isinstance(value[1], bytes)
                    and all(isinstance(v, int) for v in (value[0], value[2]))):
                raise Refused(DataAccessResult.TYPE_UNMATCHED,
                              "send_destination_and_method is {enum, octet-string, enum}")
            push.transport_service, push.destination, push.message_type = \
                int(value[0]), bytes(value[1]), int(value[2])

        return CosemObject(40, 0, PUSH_SETUP, {
            2: Attribute(get=lambda r: Array([c.to_data() for c in pushed])),
            3: Attribute(get=lambda r: Structure((Enum(push.transport_service),
                                                  OctetString(push.destination),
                                                  Enum(push.message_type))),
                         set=write_destination),
            4: Attribute(get=lambda r: Array([])),  # communication_window: always
            5: Attribute(get=lambda r: LongUnsigned(0)),  # randomisation_start_interval
            6: Attribute(get=lambda r: Unsigned(0)),  # number_of_retries
            7: Attribute(get=lambda r: LongUnsigned(0)),  # repetition_delay
        })

    def _association(self, logical_name: bytes, role: ClientRole | None) -> CosemObject:
        """Association LN (class 15, version 1). ``role`` None: the current association."""

        def own(request: Request) -> bool:
            return role is None or request.association.client_sap == role.client_sap

        def view(request: Request) -> ObjectView:
            return (request.association.view if own(request)
                    else self.view_for(role.client_sap))  # type: ignore[union-attr]

        def object_list(request: Request) -> Array:
            return Array([_object_list_element(obj, granted) for obj, granted in view(request)])

        def partners(request: Request) -> Structure:
            sap = request.association.client_sap if role is None else role.client_sap
            return Structure((Integer(sap), LongUnsigned(request.association.server_sap)))

        def mechanism(request: Request) -> Structure:
            mech = request.association.mechanism_id if own(request) else role.mechanism_id
            return _context_name(2, mech)

        def context_info(request: Request) -> Structure:
            a = request.association
            if own(request):
                conformance, receive, send = a.conformance, a.server_max_receive_pdu_size, \
                    a.max_pdu_size
            else:
                conformance, receive, send = SERVER_CONFORMANCE, a.server_max_receive_pdu_size, \
                    a.server_max_receive_pdu_size
            return Structure((BitString(int(conformance).to_bytes(3, "big"), 24),
                              LongUnsigned(receive), LongUnsigned(send),
                              Unsigned(a.dlms_version), Integer(0), OctetString(b"")))

        return CosemObject(15, 1, logical_name, {
            2: Attribute(get=object_list),
            3: Attribute(get=partners),
            4: Attribute(get=lambda r: _context_name(1, r.association.context_id)),
            5: Attribute(get=context_info),
            6: Attribute(get=mechanism),
            8: Attribute(get=lambda r: Enum(2 if own(r) else 0)),  # associated / non-assoc.
            9: Attribute(get=lambda r: OctetString(SECURITY_SETUP)),
        })


#: The services this meter implements (the association layer intersects with the client's).
SERVER_CONFORMANCE = (
    Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ | Conformance.MULTIPLE_REFERENCES
    | Conformance.GET | Conformance.SET | Conformance.SELECTIVE_ACCESS | Conformance.ACTION
    | Conformance.GENERAL_PROTECTION
)


def _register(logical_name: bytes, value: Callable[[datetime], Any],
              scaler_unit: Structure) -> CosemObject:
    """Register (class 3, version 0): the value follows the world's time."""
    return CosemObject(3, 0, logical_name, {
        2: Attribute(get=lambda r: value(r.world_now)),
        3: Attribute(get=lambda r: scaler_unit),
    })


def _data(logical_name: bytes, get: Callable[[Request], Any]) -> CosemObject:
    return CosemObject(1, 0, logical_name, {2: Attribute(get=get)})


def _context_name(arc: int, last: int) -> Structure:
    """application_context_name / authentication_mechanism_name in the structure form of
    Blue Book, Association LN: {2, 16, 756, 5, 8, arc, last}."""
    return Structure((Unsigned(2), Unsigned(16), LongUnsigned(756), Unsigned(5), Unsigned(8),
                      Unsigned(arc), Unsigned(last)))


def _object_list_element(obj: CosemObject, granted: Rights) -> Structure:
    """object_list_element (Blue Book, Association LN class 15 version 1)."""
    indexes = sorted({1, *obj.attributes})
    attribute_access = Array([
        Structure((Integer(i), Enum(granted.attribute(i)),
                   Array([Integer(s) for s in obj.attributes[i].selectors])
                   if i in obj.attributes and obj.attributes[i].selectors
                   and granted.attribute(i).readable else None))
        for i in indexes])
    method_access = Array([Structure((Integer(m), Enum(granted.method(m))))
                           for m in sorted(granted.methods)])
    return Structure((LongUnsigned(obj.class_id), Unsigned(obj.version),
                      OctetString(obj.logical_name),
                      Structure((attribute_access, method_access))))


# --- the two profiles -----------------------------------------------------------------------


def _digits(meter: Meter, purpose: bytes, count: int) -> str:
    return "".join(str(int(meter.curve.noise(purpose, i) * 10)) for i in range(count))


def build(profile: str, seed: int, clock: Callable[[], datetime], *,
          management_sap: int = 1, password: Secret | None = None) -> SimulatedMeter:
    """A simulated meter with the object set of ``profile`` (``generic`` or ``t210d``).

    ``management_sap``: installations differ (the reference trace's client uses 2).
    ``password``: the LLS secret of the generic management client (default ``00000000``).
    """
    if profile not in PROFILES:
        raise ConfigError(f"unknown simulator profile {profile!r}; expected one of "
                          f"{', '.join(PROFILES)}")
    if management_sap == 16:
        raise ConfigError("the management client cannot use SAP 16 (the public client)")
    return PROFILES[profile](Meter(seed, clock), management_sap, password)


def _generic(meter: Meter, management_sap: int, password: Secret | None) -> SimulatedMeter:
    digits = _digits(meter, b"serial", 8)
    return SimulatedMeter(
        meter, profile="generic", manufacturer="DLE", serial=f"DLE{digits}",
        logical_device_name=f"DLE{digits:0>13}".encode("ascii"),
        system_title=b"DLE" + bytes.fromhex(f"{int(digits):010x}")[-5:],
        firmware=b"dlms-edge-sim 1.0", device_id=b"generic meter",
        roles=(ClientRole("public", 16, ln("0.0.40.0.1.255"), MECHANISM_NONE),
               ClientRole("management", management_sap, ln("0.0.40.0.2.255"), MECHANISM_LOW,
                          password or Secret(b"00000000", "LLS password"))))


def _t210d(meter: Meter, management_sap: int, password: Secret | None) -> SimulatedMeter:
    digits = _digits(meter, b"serial", 10)
    # System title: 'SAG' + device type 0x67 + 4 octets of the serial number, the layout
    # of the T-210D in the reference trace (5341476770067A23).
    return SimulatedMeter(
        meter, profile="t210d", manufacturer="SAG", serial=f"1SAG{digits}",
        logical_device_name=f"SAG{digits:0>13}".encode("ascii"),
        system_title=b"SAG\x67" + (int(digits) & 0xFFFFFFFF).to_bytes(4, "big"),
        firmware=b"T210D 1.07.12", device_id=b"Sagemcom T-210D",
        roles=(ClientRole("public", 16, ln("0.0.40.0.1.255"), MECHANISM_NONE),
               ClientRole("management", management_sap, ln("0.0.40.0.2.255"),
                          MECHANISM_HLS_GMAC)))


#: The meter's PDU size per model (server-max-receive-pdu-size of its AARE, and the largest
#: response APDU it sends; longer responses go as GET datablocks). Meters announce a few
#: hundred bytes to 1-2 KB; these are of that order, not read from a capture of the model.
#: ``dlms-edge simulate --max-pdu`` overrides them.
MAX_PDU_SIZE: dict[str, int] = {
    "generic": 1024,
    "t210d": 512,
}

PROFILES: dict[str, Callable[[Meter, int, Secret | None], SimulatedMeter]] = {
    "generic": _generic,
    "t210d": _t210d,
}

__all__ = ["MAX_PDU_SIZE", "PROFILES", "SERVER_CONFORMANCE", "AssociationContext", "ClientRole",
           "SimulatedMeter", "build", "ln"]
