/**
 * Wialon Retranslator v1.0 on the wire: the constants, the packet as data, the errors, and the one
 * character rule names and unit IDs share.
 *
 * Byte orders follow Gurtam's description (see docs/wialon.md): the packet size is u32 little-endian;
 * time, flags, block sizes, int32, int64 and the posinfo u16 fields are big-endian; doubles are little-endian.
 */

/** The one-byte acknowledgement a receiver sends for each correct packet. */
export const ACK_BYTE = 0x11;
/** First two bytes of every data block. */
export const BLOCK_MARKER = 0x0bbb;
/** Gurtam: "maximum name size is 38 bytes". Whether the NUL counts is unconfirmed; we do not count it. */
export const MAX_NAME_BYTES = 38;
/** Splitter guard against garbage on the port (e.g. "GET " read as a size of 542 MB). */
export const DEFAULT_MAX_PACKET_BYTES = 16 * 1024 * 1024;

export const WialonFlags = { position: 0x01, inputs: 0x02, outputs: 0x04, alarm: 0x10, driver: 0x20 } as const;

export const TYPE_BYTE = { text: 1, binary: 2, posinfo: 2, int32: 3, double: 4, int64: 5, image: 6 } as const;
export const POSINFO_BYTES = 29;
/** Names Gurtam reserves for blocks that must carry attribute 1 to be registered. */
export const FIXED_NAMES: ReadonlySet<string> = new Set(['posinfo', 'avl_inputs', 'avl_outputs', 'avl_driver']);
export const INT32_MIN = -0x80000000;
export const INT32_MAX = 0x7fffffff;
export const UINT32_MAX = 0xffffffff;
export const INT64_MIN = -(1n << 63n);
export const INT64_MAX = (1n << 63n) - 1n;

export interface PosInfo {
  /** Degrees, east positive. Sent first: the block is longitude, latitude, altitude. */
  longitude: number;
  latitude: number;
  /** Metres above sea level. */
  altitude: number;
  /** km/h, u16. */
  speed: number;
  /** Degrees 0..359, u16. */
  course: number;
  /** u8. */
  satellites: number;
}

/** One data block. `attribute` 1 = hidden (required for posinfo/avl_*), 0 = shown. */
export type WialonBlock = { name: string; attribute: number } & (
  | { type: 'text'; value: string }
  | { type: 'int32'; value: number }
  | { type: 'double'; value: number }
  | { type: 'int64'; value: bigint }
  | { type: 'posinfo'; value: PosInfo }
  | { type: 'binary'; value: Buffer }
  | { type: 'image'; value: Buffer }
);

export interface WialonPacket {
  /** The controller ID: the unit's unique ID in Wialon (the flespi `ident`). */
  unitId: string;
  /** Seconds since the epoch, u32. */
  time: number;
  flags: number;
  blocks: WialonBlock[];
}

/** A packet could not be built: `field` names what is missing or wrong (`ident`, `timestamp`, a block name). */
export class WialonEncodeError extends Error {
  override readonly name = 'WialonEncodeError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** Bytes that are not a valid packet; `offset` counts from the first byte of the packet's size field. */
export class WialonDecodeError extends Error {
  override readonly name = 'WialonDecodeError';
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {
    super(`${reason} (at byte ${offset})`);
  }
}

/** Unit IDs and block names are printable ASCII. */
export function isPrintableAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code > 0x7e) return false;
  }
  return true;
}
