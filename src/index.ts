/**
 * flespi-receiver, the package: the core library (`./core`), and the local flespi sandbox that tests
 * and demos run against without an account.
 */
export * from './core/index';
export { startSandbox, type Sandbox, type SandboxOptions } from './sandbox/index';
