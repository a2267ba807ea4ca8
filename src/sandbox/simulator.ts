// Simulated trackers: vehicles driving loops through real city streets, stopping at some corners,
// sending flespi-style flat messages at a configurable rate.
import type { FlespiMessage } from '../core/message';
import type { ProtocolInfo } from './catalog';
import { microseconds, Random } from './random';

interface City {
  name: string;
  mcc: number;
  mnc: number;
  altitude: number;
  /** A closed loop of [latitude, longitude] corners. */
  loop: readonly (readonly [number, number])[];
}

const CITIES: readonly City[] = [
  {
    name: 'Riga',
    mcc: 247,
    mnc: 1,
    altitude: 9,
    loop: [
      [56.9496, 24.1052],
      [56.951, 24.1131],
      [56.9566, 24.1213],
      [56.9644, 24.1357],
      [56.9583, 24.1452],
      [56.9479, 24.1318],
      [56.9466, 24.121],
    ],
  },
  {
    name: 'Berlin',
    mcc: 262,
    mnc: 1,
    altitude: 36,
    loop: [
      [52.5163, 13.3777],
      [52.517, 13.3889],
      [52.5192, 13.4015],
      [52.5219, 13.4132],
      [52.513, 13.42],
      [52.5075, 13.3904],
      [52.5096, 13.3759],
    ],
  },
  {
    name: 'Barcelona',
    mcc: 214,
    mnc: 7,
    altitude: 24,
    loop: [
      [41.387, 2.17],
      [41.3917, 2.1649],
      [41.4036, 2.1744],
      [41.3954, 2.188],
      [41.3851, 2.1808],
      [41.3755, 2.1771],
      [41.3809, 2.1665],
    ],
  },
];

const EARTH_RADIUS_M = 6_371_000;
const toRad = (deg: number) => (deg * Math.PI) / 180;

function distanceM(a: readonly [number, number], b: readonly [number, number]): number {
  const dLat = toRad(b[0] - a[0]);
  const dLon = toRad(b[1] - a[1]);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(toRad(a[0])) * Math.cos(toRad(b[0])) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.sqrt(h));
}

function bearingDeg(a: readonly [number, number], b: readonly [number, number]): number {
  const y = Math.sin(toRad(b[1] - a[1])) * Math.cos(toRad(b[0]));
  const x = Math.cos(toRad(a[0])) * Math.sin(toRad(b[0])) - Math.sin(toRad(a[0])) * Math.cos(toRad(b[0])) * Math.cos(toRad(b[1] - a[1]));
  return ((Math.atan2(y, x) * 180) / Math.PI + 360) % 360;
}

export interface SimulatedDeviceSpec {
  ident: string;
  channelId: number;
  protocol: ProtocolInfo;
}

type Mode = 'driving' | 'stopped' | 'parked';

/** One vehicle: where it is on its loop and what its sensors read. */
export class SimulatedVehicle {
  private readonly city: City;
  private readonly peer: string;
  private segment: number;
  private along = 0;
  private speedKmh = 0;
  private targetKmh: number;
  private mode: Mode = 'driving';
  private pause = 0;
  private mileageKm: number;
  private fuel: number;
  private cell: number;
  /** Messages owed since the last tick (fractions carry over). */
  due: number;
  /** Seconds between a fix and its arrival at flespi. */
  readonly latency: number;

  constructor(
    readonly spec: SimulatedDeviceSpec,
    private readonly random: Random,
    index: number,
  ) {
    this.city = CITIES[index % CITIES.length] as City;
    this.segment = random.int(0, this.city.loop.length - 1);
    this.along = random.between(0, this.segmentLength());
    this.targetKmh = random.between(25, 55);
    this.mileageKm = Math.round(random.between(20_000, 180_000));
    this.fuel = random.between(30, 95);
    this.cell = random.int(10_000, 60_000);
    this.peer = `203.0.113.${random.int(2, 254)}:${random.int(30_000, 60_000)}`;
    this.due = random.next();
    this.latency = random.between(0.1, 0.6);
  }

  private corner(i: number): readonly [number, number] {
    const loop = this.city.loop;
    return loop[((i % loop.length) + loop.length) % loop.length] as readonly [number, number];
  }

  private segmentLength(): number {
    return distanceM(this.corner(this.segment), this.corner(this.segment + 1));
  }

  /** Moves the vehicle `dt` seconds forward. */
  advance(dt: number): void {
    const r = this.random;
    if (this.mode !== 'driving') {
      this.speedKmh = 0;
      this.pause -= dt;
      if (this.pause <= 0) {
        this.mode = 'driving';
        this.targetKmh = r.between(25, 55);
      }
      return;
    }
    // About 2 m/s² of acceleration or braking towards the target speed.
    const maxChange = 7 * dt;
    this.speedKmh += Math.max(-maxChange, Math.min(maxChange, this.targetKmh - this.speedKmh));
    if (r.chance(dt / 20)) this.targetKmh = r.between(20, 60);
    this.along += (this.speedKmh / 3.6) * dt;
    this.mileageKm += (this.speedKmh * dt) / 3600;
    this.fuel = Math.max(5, this.fuel - (this.speedKmh * dt) / 3600 / 6);
    while (this.along >= this.segmentLength()) {
      this.along -= this.segmentLength();
      this.segment = (this.segment + 1) % this.city.loop.length;
      this.cell = Math.max(1, this.cell + r.int(-40, 40));
      if (r.chance(0.05)) this.stop('parked', r.between(60, 300));
      else if (r.chance(0.3)) this.stop('stopped', r.between(10, 40));
      if (this.mode !== 'driving') break;
    }
  }

  private stop(mode: Mode, seconds: number): void {
    this.mode = mode;
    this.pause = seconds;
    this.speedKmh = 0;
    this.along = 0;
    if (mode === 'parked' && this.fuel < 20) this.fuel = this.random.between(80, 98);
  }

  /** The message the tracker sends at `deviceTime` (UNIX seconds). */
  message(deviceTime: number): FlespiMessage {
    const r = this.random;
    const a = this.corner(this.segment);
    const b = this.corner(this.segment + 1);
    const fraction = Math.min(1, this.along / Math.max(1, this.segmentLength()));
    const ignition = this.mode !== 'parked';
    const moving = Math.round(this.speedKmh) > 0;
    const weakFix = r.chance(0.01);
    const satellites = weakFix ? 3 : r.int(8, 16);
    const message: FlespiMessage = {
      ident: this.spec.ident,
      peer: this.peer,
      timestamp: microseconds(deviceTime),
      'position.latitude': round(a[0] + (b[0] - a[0]) * fraction, 6),
      'position.longitude': round(a[1] + (b[1] - a[1]) * fraction, 6),
      'position.altitude': round(this.city.altitude + r.between(-3, 3), 1),
      'position.speed': Math.round(this.speedKmh),
      'position.direction': Math.round(bearingDeg(a, b)) % 360,
      'position.satellites': satellites,
      'position.hdop': weakFix ? 4.8 : round(r.between(0.5, 1.4), 1),
      'position.valid': !weakFix,
      'engine.ignition.status': ignition,
      'movement.status': moving,
      din: (ignition ? 1 : 0) | (r.chance(0.02) ? 2 : 0),
      'external.powersource.voltage': round(ignition ? r.between(13.8, 14.3) : r.between(12.3, 12.7), 2),
    };
    const signal = r.int(55, 100);
    switch (this.spec.protocol.name) {
      case 'teltonika':
        Object.assign(message, {
          'battery.voltage': round(r.between(3.9, 4.1), 3),
          'gsm.signal.level': signal,
          'gsm.mcc': this.city.mcc,
          'gsm.mnc': this.city.mnc,
          'gsm.lac': 100 + (this.cell % 50),
          'gsm.cellid': this.cell,
          'gsm.operator.code': `${this.city.mcc}${String(this.city.mnc).padStart(2, '0')}`,
          'gnss.status': true,
          'event.priority.enum': 0,
        });
        break;
      case 'wialon_ips':
        Object.assign(message, { dout: 0, 'gsm.signal.level': signal, 'fuel.level': Math.round(this.fuel) });
        break;
      default:
        Object.assign(message, { 'battery.voltage': round(r.between(3.9, 4.1), 3), 'gsm.signal.level': signal, 'vehicle.mileage': round(this.mileageKm, 1) });
    }
    return message;
  }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

const TICK_MS = 100;
/** After a stall (a paused debugger, a busy CPU) at most this many seconds of messages are made up. */
const MAX_CATCH_UP_S = 2;

export interface SimulationState {
  running: boolean;
  rateHz: number;
  devices: number;
  replayRemaining: number;
}

/** Runs the vehicles (or a replay) on a timer and hands their messages to `emit`, batched per channel. */
export class Simulator {
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastTick = 0;
  private replayDue = 0;
  /** A replay replaces the vehicles for good, also once it has run out. */
  private readonly replaying: boolean;

  constructor(
    private readonly vehicles: SimulatedVehicle[],
    private rateHz: number,
    private readonly emit: (channelId: number, messages: FlespiMessage[]) => void,
    /** Messages to replay instead of the vehicles, with the channel each goes to. */
    private readonly replay: { channelId: number; message: FlespiMessage }[] = [],
  ) {
    this.replaying = replay.length > 0;
  }

  get state(): SimulationState {
    return { running: this.timer !== undefined, rateHz: this.rateHz, devices: this.vehicles.length, replayRemaining: this.replay.length };
  }

  start(): void {
    if (this.timer) return;
    this.lastTick = Date.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  setRate(rateHz: number): void {
    this.rateHz = rateHz;
  }

  private tick(): void {
    const now = Date.now();
    const dt = Math.min(MAX_CATCH_UP_S, (now - this.lastTick) / 1000);
    this.lastTick = now;
    const batches = new Map<number, FlespiMessage[]>();
    const add = (channelId: number, message: FlespiMessage) => {
      let batch = batches.get(channelId);
      if (!batch) batches.set(channelId, (batch = []));
      batch.push(message);
    };
    if (this.replaying) {
      this.replayDue += this.rateHz * Math.max(1, this.vehicles.length) * dt;
      const n = Math.min(Math.floor(this.replayDue), this.replay.length);
      this.replayDue -= n;
      for (const item of this.replay.splice(0, n)) add(item.channelId, item.message);
    } else {
      const step = 1 / this.rateHz;
      for (const vehicle of this.vehicles) {
        vehicle.due += this.rateHz * dt;
        const n = Math.floor(vehicle.due);
        vehicle.due -= n;
        for (let i = 0; i < n; i++) {
          vehicle.advance(step);
          // Sub-millisecond jitter, smaller than the step so device times stay in order.
          const jitter = Math.min(step, 0.001) * Math.random();
          add(vehicle.spec.channelId, vehicle.message(now / 1000 - (n - 1 - i) * step - vehicle.latency + jitter));
        }
      }
    }
    for (const [channelId, messages] of batches) this.emit(channelId, messages);
  }
}
