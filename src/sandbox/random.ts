/** A small seeded PRNG (mulberry32), so a seed replays the same simulated devices. */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  between(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  int(min: number, maxInclusive: number): number {
    return Math.floor(this.between(min, maxInclusive + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T;
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }
}

/** A 15-digit IMEI-like ident: a real-looking type allocation code, a serial and a Luhn check digit. */
export function imeiLike(random: Random): string {
  let digits = '35' + String(random.int(100000, 999999)) + String(random.int(0, 999999)).padStart(6, '0');
  digits = digits.slice(0, 14);
  return digits + luhnCheckDigit(digits);
}

function luhnCheckDigit(digits: string): number {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return (10 - (sum % 10)) % 10;
}

/** Rounds seconds to microseconds, the precision of flespi timestamps. */
export function microseconds(seconds: number): number {
  return Math.round(seconds * 1e6) / 1e6;
}
