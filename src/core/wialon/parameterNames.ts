// What each parameter name means for the one-pass encoder, worked out once per name and cached:
// names repeat from message to message.
import { writeAsciiz } from './packetEncoder';
import { BLOCK_MARKER, FIXED_NAMES, MAX_NAME_BYTES, isPrintableAscii, type PosInfo } from './protocol';

/** What a parameter name means for the encoder, independent of its value. */
export class NameInfo {
  /** The posinfo field this name feeds (when latitude and longitude are present). */
  position: keyof PosInfo | undefined = undefined;
  /** 'din'/'dout': the mask; with `bit`: the boolean din.N/dout.N. */
  io: 'din' | 'dout' | undefined = undefined;
  bit: number | undefined = undefined;
  /** `ident` and `timestamp` go into the packet header, never into a block. */
  header: 'ident' | 'timestamp' | undefined = undefined;
  /** Sets the avl_driver flag. */
  driver = false;
  /** By type byte: marker, size, attribute, type and name of a block with this name (the size fits fixed-size values). */
  private readonly starts: (Uint8Array | undefined)[] = [];

  constructor(
    /** 'plain' names are sent as they are; 'general' ones need the general path; 'bad' ones are always skipped. */
    readonly kind: 'plain' | 'general' | 'bad',
    readonly name = '',
    /** Why a 'bad' name is skipped. */
    readonly reason = '',
  ) {}

  /** The first 8 + name + 1 bytes of a block of `type` whose value takes `valueBytes`. */
  blockStart(type: number, valueBytes: number): Uint8Array {
    const known = this.starts[type];
    if (known) return known;
    const start = Buffer.alloc(8 + this.name.length + 1);
    start.writeUInt16BE(BLOCK_MARKER, 0);
    start.writeUInt32BE(2 + this.name.length + 1 + valueBytes, 2);
    start[6] = FIXED_NAMES.has(this.name) ? 1 : 0;
    start[7] = type;
    writeAsciiz(start, this.name, 8);
    this.starts[type] = start;
    return start;
  }
}

const POSITION_FIELDS: Readonly<Record<string, keyof PosInfo>> = {
  'position.latitude': 'latitude',
  'position.longitude': 'longitude',
  'position.altitude': 'altitude',
  'position.speed': 'speed',
  'position.direction': 'course',
  'position.satellites': 'satellites',
};
const NAME_CACHE_LIMIT = 10_000;
const nameCache = new Map<string, NameInfo>();
export function nameInfo(key: string): NameInfo {
  const known = nameCache.get(key);
  if (known) return known;
  const info = classifyName(key);
  if (nameCache.size < NAME_CACHE_LIMIT) nameCache.set(key, info);
  return info;
}

function classifyName(key: string): NameInfo {
  if (key === '') return new NameInfo('bad', key, 'the name is empty');
  if (!isPrintableAscii(key)) return new NameInfo('bad', key, 'the name has characters outside printable ASCII; Wialon parameter names are ASCII');
  if (key.length > MAX_NAME_BYTES || key === 'posinfo' || key === 'avl_inputs' || key === 'avl_outputs') return new NameInfo('general', key);
  const info = new NameInfo('plain', key);
  info.position = POSITION_FIELDS[key];
  info.driver = key === 'avl_driver';
  if (key === 'ident' || key === 'timestamp') info.header = key;
  if (key === 'din' || key === 'dout') info.io = key;
  const io = /^(din|dout)\.([1-9]\d*)$/.exec(key);
  if (io && Number(io[2]) <= 32) {
    info.io = io[1] as 'din' | 'dout';
    info.bit = Number(io[2]) - 1;
  }
  return info;
}
