/**
 * Symbolic dimensions: integer polynomials over named symbols (`batch`, `seq`) and floor/ceil
 * divisions by constants, kept in a canonical form so that two equal expressions print the same:
 * `2*seq`, `seq+1`, `batch*seq`, `floor((h-1)/2)+1`.
 *
 * In the IR a dim is a number, a string (ONNX dim_param) or null; the string of a symbolic dim is
 * the canonical text of its expression, so it survives a round trip through a model file and
 * parses back to the same expression.
 */

type Atom =
  | { kind: 'sym'; name: string }
  | { kind: 'floor' | 'ceil'; num: Sym; den: number };

/** Atoms by their canonical text. */
const atoms = new Map<string, Atom>();

function atomKey(a: Atom): string {
  if (a.kind === 'sym') return a.name;
  const n = a.num.toString();
  const inner = a.num.isSimple() ? n : `(${n})`;
  return `${a.kind}(${inner}/${a.den})`;
}

function intern(a: Atom): string {
  const key = atomKey(a);
  if (!atoms.has(key)) atoms.set(key, a);
  return key;
}

/** Monomial: atom keys sorted, joined by '*'; '' is the constant term. */
function monoKey(parts: string[]): string {
  return parts.slice().sort().join('*');
}

function monoParts(key: string): string[] {
  return key === '' ? [] : splitTop(key, '*');
}

/** Split on `sep` at parenthesis depth 0. */
function splitTop(s: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0, start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === sep && depth === 0) { out.push(s.slice(start, i)); start = i + 1; }
  }
  out.push(s.slice(start));
  return out;
}

function gcd(a: number, b: number): number {
  a = Math.abs(a); b = Math.abs(b);
  while (b) [a, b] = [b, a % b];
  return a;
}

export class Sym {
  /** monomial key -> integer coefficient (never 0) */
  private constructor(private readonly terms: ReadonlyMap<string, number>) {}

  static readonly ZERO = new Sym(new Map());
  static readonly ONE = Sym.const(1);

  static const(n: number): Sym {
    if (!Number.isSafeInteger(n)) throw new RangeError(`not an integer dim: ${n}`);
    return n === 0 ? Sym.ZERO : new Sym(new Map([['', n]]));
  }

  static symbol(name: string): Sym {
    return new Sym(new Map([[intern({ kind: 'sym', name }), 1]]));
  }

  /** From an IR dim: numbers are constants, strings are parsed (unparseable text is one symbol). */
  static from(d: number | string | Sym): Sym {
    if (d instanceof Sym) return d;
    return typeof d === 'number' ? Sym.const(d) : parseSym(d);
  }

  isConst(): boolean {
    return this.terms.size === 0 || (this.terms.size === 1 && this.terms.has(''));
  }

  /** The value, if constant. */
  get value(): number | undefined {
    return this.isConst() ? (this.terms.get('') ?? 0) : undefined;
  }

  /** A lone symbol or constant, or a single monomial: prints without parentheses inside floor(). */
  isSimple(): boolean {
    return this.terms.size <= 1 && [...this.terms.values()].every((c) => c >= 0);
  }

  /** The IR form: a number when constant, else the canonical text. */
  toDim(): number | string {
    return this.value ?? this.toString();
  }

  equals(o: Sym): boolean {
    if (this.terms.size !== o.terms.size) return false;
    for (const [k, c] of this.terms) if (o.terms.get(k) !== c) return false;
    return true;
  }

  add(o: Sym | number): Sym {
    const b = typeof o === 'number' ? Sym.const(o) : o;
    const m = new Map(this.terms);
    for (const [k, c] of b.terms) {
      const v = (m.get(k) ?? 0) + c;
      if (v === 0) m.delete(k); else m.set(k, v);
    }
    return new Sym(m);
  }

  neg(): Sym {
    return new Sym(new Map([...this.terms].map(([k, c]) => [k, -c])));
  }

  sub(o: Sym | number): Sym {
    return this.add((typeof o === 'number' ? Sym.const(o) : o).neg());
  }

  mul(o: Sym | number): Sym {
    const b = typeof o === 'number' ? Sym.const(o) : o;
    const m = new Map<string, number>();
    for (const [ka, ca] of this.terms) {
      for (const [kb, cb] of b.terms) {
        const k = monoKey([...monoParts(ka), ...monoParts(kb)]);
        const v = (m.get(k) ?? 0) + ca * cb;
        if (v === 0) m.delete(k); else m.set(k, v);
      }
    }
    return new Sym(m);
  }

  private divide(d: number, kind: 'floor' | 'ceil'): Sym {
    if (!Number.isInteger(d) || d <= 0) throw new RangeError(`division of a dim by ${d}`);
    if (d === 1) return this;
    const v = this.value;
    if (v !== undefined) return Sym.const(kind === 'floor' ? Math.floor(v / d) : Math.ceil(v / d));
    // exact when every coefficient is a multiple of d
    if ([...this.terms.values()].every((c) => c % d === 0)) return new Sym(new Map([...this.terms].map(([k, c]) => [k, c / d])));
    // pull out the part that divides exactly, so equal values print alike:
    // floor((d*a + r)/d) = a + floor(r/d), with every coefficient of r in [0, d)
    const exact = new Map<string, number>();
    const rest = new Map<string, number>();
    for (const [k, c] of this.terms) {
      const q = Math.floor(c / d);
      if (q !== 0) exact.set(k, q);
      if (c - q * d !== 0) rest.set(k, c - q * d);
    }
    const restSym = new Sym(rest);
    const r = restSym.value;
    if (r !== undefined) return new Sym(exact).add(kind === 'floor' ? Math.floor(r / d) : Math.ceil(r / d));
    const g = [...rest.values()].reduce((a, c) => gcd(a, c), d);
    const reduced = g > 1 && [...rest.values()].every((c) => c % g === 0) ? new Sym(new Map([...rest].map(([k, c]) => [k, c / g]))) : undefined;
    const atom = reduced && d % g === 0
      ? Sym.atom({ kind, num: reduced, den: d / g })
      : Sym.atom({ kind, num: restSym, den: d });
    return new Sym(exact).add(atom);
  }

  private static atom(a: Atom): Sym {
    if (a.kind !== 'sym' && a.den === 1) return a.num;
    return new Sym(new Map([[intern(a), 1]]));
  }

  floorDiv(d: number): Sym { return this.divide(d, 'floor'); }
  /** ceil(x/d) is written floor((x+d-1)/d): one canonical form, so equal dims compare equal. */
  ceilDiv(d: number): Sym {
    if (!Number.isInteger(d) || d <= 0) throw new RangeError(`division of a dim by ${d}`);
    return this.add(d - 1).divide(d, 'floor');
  }

  /** Symbols this expression mentions (inside floor/ceil too). */
  symbols(): Set<string> {
    const out = new Set<string>();
    for (const k of this.terms.keys()) {
      for (const p of monoParts(k)) {
        const a = atoms.get(p)!;
        if (a.kind === 'sym') out.add(a.name);
        else for (const s of a.num.symbols()) out.add(s);
      }
    }
    return out;
  }

  /** Replace symbols by expressions (or numbers), simplifying. */
  subst(map: ReadonlyMap<string, Sym>): Sym {
    if (map.size === 0) return this;
    let out = Sym.ZERO;
    for (const [k, c] of this.terms) {
      let term = Sym.const(c);
      for (const p of monoParts(k)) {
        const a = atoms.get(p)!;
        const v = a.kind === 'sym' ? (map.get(a.name) ?? Sym.symbol(a.name)) : a.num.subst(map)[a.kind === 'floor' ? 'floorDiv' : 'ceilDiv'](a.den);
        term = term.mul(v);
      }
      out = out.add(term);
    }
    return out;
  }

  toString(): string {
    if (this.terms.size === 0) return '0';
    const keys = [...this.terms.keys()].sort((a, b) => (a === '' ? 1 : b === '' ? -1 : a < b ? -1 : a > b ? 1 : 0));
    let s = '';
    for (const k of keys) {
      const c = this.terms.get(k)!;
      let t: string;
      if (k === '') t = String(Math.abs(c));
      else t = Math.abs(c) === 1 ? k : `${Math.abs(c)}*${k}`;
      s += s === '' ? (c < 0 ? `-${t}` : t) : c < 0 ? `-${t}` : `+${t}`;
    }
    return s;
  }
}

// ---------------------------------------------------------------- parsing dim_param text

class Parser {
  private i = 0;
  constructor(private readonly s: string) {}

  parse(): Sym {
    const e = this.expr();
    this.ws();
    if (this.i !== this.s.length) throw new Error('trailing text');
    return e;
  }

  private ws(): void { while (this.s[this.i] === ' ') this.i++; }
  private peek(): string | undefined { this.ws(); return this.s[this.i]; }

  private expr(): Sym {
    let sign = 1;
    if (this.peek() === '-') { this.i++; sign = -1; }
    let e = this.term().mul(sign);
    for (;;) {
      const c = this.peek();
      if (c === '+') { this.i++; e = e.add(this.term()); }
      else if (c === '-') { this.i++; e = e.sub(this.term()); }
      else return e;
    }
  }

  private term(): Sym {
    let e = this.factor();
    while (this.peek() === '*') { this.i++; e = e.mul(this.factor()); }
    return e;
  }

  private factor(): Sym {
    const c = this.peek();
    if (c === '(') { this.i++; const e = this.expr(); this.expect(')'); return e; }
    const num = /^\d+/.exec(this.s.slice(this.i));
    if (num) { this.i += num[0].length; return Sym.const(Number(num[0])); }
    const id = /^[A-Za-z_][A-Za-z0-9_.:]*/.exec(this.s.slice(this.i));
    if (!id) throw new Error('expected a dim');
    this.i += id[0].length;
    if ((id[0] === 'floor' || id[0] === 'ceil') && this.peek() === '(') {
      this.i++;
      const e = this.expr();
      this.expect('/');
      const d = /^\d+/.exec(this.s.slice(this.i + (this.s[this.i] === ' ' ? 1 : 0)));
      this.ws();
      if (!d) throw new Error('expected a divisor');
      this.i += d[0].length;
      this.expect(')');
      return id[0] === 'floor' ? e.floorDiv(Number(d[0])) : e.ceilDiv(Number(d[0]));
    }
    return Sym.symbol(id[0]);
  }

  private expect(c: string): void {
    if (this.peek() !== c) throw new Error(`expected '${c}'`);
    this.i++;
  }
}

const parsed = new Map<string, Sym>();

/** Parse dim_param text; text that is not an expression is one symbol named by the whole text. */
export function parseSym(text: string): Sym {
  let s = parsed.get(text);
  if (!s) {
    try {
      s = new Parser(text).parse();
    } catch {
      s = Sym.symbol(text);
    }
    parsed.set(text, s);
  }
  return s;
}
