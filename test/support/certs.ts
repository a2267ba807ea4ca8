/**
 * Test certificates made with the openssl command line at test time, in a temp folder.
 *
 * `createTestPki()` builds the set most TLS tests need (a CA, a server certificate for
 * 127.0.0.1/localhost, client certificates good and bad); `TestCa.issue()` makes more.
 * EC P-256 keys keep generation to a few milliseconds per certificate.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Paths of a PEM certificate and its unencrypted PEM private key. */
export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export interface IssueOptions {
  /** `server` adds serverAuth and the subjectAltNames; `client` adds clientAuth. */
  usage: 'server' | 'client';
  /** For server certificates, e.g. `['IP:127.0.0.1', 'DNS:localhost']`. */
  altNames?: readonly string[];
  /** Validity start; default: one hour ago. */
  notBefore?: Date;
  /** Validity end; default: one year from now. */
  notAfter?: Date;
}

// One config for `openssl req` and `openssl ca`, so the host's openssl.cnf plays no part.
const OPENSSL_CONFIG = `
[ req ]
distinguished_name = dn
[ dn ]
[ ca ]
default_ca = test_ca
[ test_ca ]
database = index.txt
new_certs_dir = issued
serial = serial
default_md = sha256
policy = any_name
unique_subject = no
[ any_name ]
commonName = supplied
`;

/** A certificate authority in its own folder, able to sign server and client certificates. */
export class TestCa implements CertFiles {
  private constructor(
    readonly dir: string,
    readonly cert: string,
    readonly key: string,
  ) {}

  /** Creates a self-signed CA named `commonName` in `dir` (which must exist and be empty). */
  static async create(dir: string, commonName: string): Promise<TestCa> {
    await writeFile(join(dir, 'openssl.cnf'), OPENSSL_CONFIG);
    await writeFile(join(dir, 'index.txt'), '');
    await writeFile(join(dir, 'serial'), '1000\n');
    await mkdir(join(dir, 'issued'));
    const ca = new TestCa(dir, join(dir, 'ca.crt'), join(dir, 'ca.key'));
    await openssl(dir, [
      'req',
      '-x509',
      '-new',
      ...newEcKey(ca.key),
      '-out',
      ca.cert,
      '-days',
      '3650',
      '-subj',
      `/CN=${commonName}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    return ca;
  }

  /** Issues a certificate named `name` (files `<name>.crt` and `<name>.key` next to the CA). */
  async issue(name: string, options: IssueOptions): Promise<CertFiles> {
    const files = { cert: join(this.dir, `${name}.crt`), key: join(this.dir, `${name}.key`) };
    const csr = join(this.dir, `${name}.csr`);
    const extensions = join(this.dir, `${name}.ext`);
    const notBefore = options.notBefore ?? new Date(Date.now() - 3600_000);
    const notAfter = options.notAfter ?? new Date(Date.now() + 365 * 86400_000);
    const lines = [
      '[ leaf ]',
      'basicConstraints = CA:FALSE',
      'keyUsage = critical,digitalSignature',
      `extendedKeyUsage = ${options.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
    ];
    if (options.altNames?.length) lines.push(`subjectAltName = ${options.altNames.join(',')}`);
    await writeFile(extensions, lines.join('\n') + '\n');
    await openssl(this.dir, ['req', '-new', ...newEcKey(files.key), '-out', csr, '-subj', `/CN=${name}`]);
    await openssl(this.dir, [
      'ca',
      '-batch',
      '-notext',
      '-cert',
      this.cert,
      '-keyfile',
      this.key,
      '-in',
      csr,
      '-out',
      files.cert,
      '-startdate',
      asn1Time(notBefore),
      '-enddate',
      asn1Time(notAfter),
      '-extfile',
      extensions,
      '-extensions',
      'leaf',
    ]);
    return files;
  }
}

/** The usual cast of a TLS test, all under one temp folder. */
export interface TestPki {
  readonly dir: string;
  /** The CA the broker trusts, and that signed `server` and `client`. */
  readonly ca: TestCa;
  /** For 127.0.0.1 and localhost. */
  readonly server: CertFiles;
  readonly client: CertFiles;
  /** An unrelated CA; `otherClient` is signed by it, so a broker trusting `ca` refuses it. */
  readonly otherCa: TestCa;
  readonly otherClient: CertFiles;
  /** Signed by `ca`, valid only on 2020-01-01. */
  readonly expiredClient: CertFiles;
  /** Signed by `ca`, valid from 2099. */
  readonly futureClient: CertFiles;
  /** A private key that belongs to no certificate here. */
  readonly strayKey: string;
  /** Deletes the folder. */
  cleanup(): Promise<void>;
}

export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'flespi-pki-'));
  try {
    const caDir = join(dir, 'ca');
    const otherCaDir = join(dir, 'other-ca');
    await mkdir(caDir);
    await mkdir(otherCaDir);
    const ca = await TestCa.create(caDir, 'Test CA');
    const otherCa = await TestCa.create(otherCaDir, 'Other CA');
    const server = await ca.issue('server', { usage: 'server', altNames: ['IP:127.0.0.1', 'DNS:localhost'] });
    const client = await ca.issue('client', { usage: 'client' });
    const otherClient = await otherCa.issue('other-client', { usage: 'client' });
    const expiredClient = await ca.issue('expired-client', {
      usage: 'client',
      notBefore: new Date('2020-01-01T00:00:00Z'),
      notAfter: new Date('2020-01-02T00:00:00Z'),
    });
    const futureClient = await ca.issue('future-client', {
      usage: 'client',
      notBefore: new Date('2099-01-01T00:00:00Z'),
      notAfter: new Date('2099-12-31T00:00:00Z'),
    });
    const strayKey = join(caDir, 'stray.key');
    await openssl(caDir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', strayKey]);
    return { dir, ca, server, client, otherCa, otherClient, expiredClient, futureClient, strayKey, cleanup: () => rm(dir, { recursive: true, force: true }) };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

function newEcKey(keyFile: string): string[] {
  return ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile];
}

/** `YYYYMMDDHHMMSSZ`, the GeneralizedTime form `openssl ca -startdate/-enddate` accepts. */
function asn1Time(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/** Runs openssl in a CA folder, with that folder's config. */
async function openssl(cwd: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd, env: { ...process.env, OPENSSL_CONF: join(cwd, 'openssl.cnf') } });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || String(error)}`, { cause: error });
  }
}
