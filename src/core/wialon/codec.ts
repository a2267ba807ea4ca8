/**
 * Wialon Retranslator v1.0: turning flespi messages into packets, and strict decoding. This file is the
 * one import path for callers; each part lives in a file of its own in this folder.
 *
 * Byte orders follow Gurtam's description (see docs/wialon.md): the packet size is u32 little-endian;
 * time, flags, block sizes, int32, int64 and the posinfo u16 fields are big-endian; doubles are little-endian.
 */
import type { FlespiMessage } from '../message';
import { messageToPacket, type EncodeOptions } from './messageToPacket';
import { fastEncode } from './onePassEncoder';
import { encodePacket } from './packetEncoder';

export {
  ACK_BYTE,
  BLOCK_MARKER,
  DEFAULT_MAX_PACKET_BYTES,
  MAX_NAME_BYTES,
  WialonDecodeError,
  WialonEncodeError,
  WialonFlags,
  type PosInfo,
  type WialonBlock,
  type WialonPacket,
} from './protocol';
export { messageToPacket, shortName, type EncodeIssue, type EncodeOptions } from './messageToPacket';
export { encodePacket } from './packetEncoder';
export { decodePacket, findBlock } from './packetDecoder';
export { PacketSplitter } from './packetSplitter';

/** One flespi message as one Retranslator packet. Throws WialonEncodeError when `ident` or `timestamp` is unusable. */
export function encodeMessage(message: FlespiMessage, options: EncodeOptions = {}): Buffer {
  return fastEncode(message, options.onIssue) ?? encodePacket(messageToPacket(message, options));
}
