// framing: a TCP byte stream cut into packets by their size fields.
import { DEFAULT_MAX_PACKET_BYTES, WialonDecodeError } from './protocol';

/**
 * Cuts a TCP byte stream into packets: 4 bytes of LE size, then that many bytes. Works across any read
 * boundary (including a read that ends right after the size field) and for any size, 256 and its multiples too.
 */
export class PacketSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private consumed = 0;

  constructor(readonly maxPacketBytes = DEFAULT_MAX_PACKET_BYTES) {}

  /** Bytes received but not yet part of a complete packet. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /**
   * Adds one read; returns the packets it completed, each with its size field. Throws WialonDecodeError
   * (with the stream offset) when a size field exceeds `maxPacketBytes`: the stream cannot be framed after that.
   */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const packets: Buffer[] = [];
    while (this.buffered >= 4) {
      const total = 4 + this.peekSize();
      if (total > this.maxPacketBytes) {
        throw new WialonDecodeError(
          `a packet of ${total} bytes (size field included) exceeds the limit of ${this.maxPacketBytes}: the stream is not Wialon Retranslator, or is out of step`,
          this.consumed,
        );
      }
      if (this.buffered < total) break;
      packets.push(this.take(total));
    }
    return packets;
  }

  private peekSize(): number {
    const first = this.chunks[0];
    if (first.length >= 4) return first.readUInt32LE(0);
    const head = Buffer.alloc(4);
    let filled = 0;
    for (const chunk of this.chunks) {
      filled += chunk.copy(head, filled, 0, Math.min(chunk.length, 4 - filled));
      if (filled === 4) break;
    }
    return head.readUInt32LE(0);
  }

  private take(length: number): Buffer {
    this.buffered -= length;
    this.consumed += length;
    const first = this.chunks[0];
    if (first.length >= length) {
      if (first.length === length) this.chunks.shift();
      else this.chunks[0] = first.subarray(length);
      return first.subarray(0, length);
    }
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.chunks[0];
      const n = Math.min(chunk.length, length - filled);
      chunk.copy(out, filled, 0, n);
      filled += n;
      if (n === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(n);
    }
    return out;
  }
}
