import { doctorLine, doctorSummary, runDoctor } from '../core/doctor';
import { terminalLine, type Logger } from '../core/logger';
import { connect, type ConnectionFlags } from './connect';
import { UsageError } from './usage';

/**
 * `doctor [channel]`: read-only checks of what this project assumes about the flespi account (see
 * docs/flespi-assumptions.md), one line per check on stdout; exit code 1 when one failed. With no
 * token it checks the built-in sandbox.
 */
export async function doctorCommand(wanted: string | undefined, flags: ConnectionFlags, mqttUrl: string | undefined, log: Logger): Promise<number> {
  if (mqttUrl !== undefined && !/^(mqtts?|wss?):\/\/[^/]+/.test(mqttUrl)) {
    throw new UsageError(`--mqtt-url must be an MQTT URL such as mqtts://mqtt.flespi.io:8883, got "${mqttUrl}"`);
  }
  const { client, sandbox } = await connect(flags, process.env, log);
  try {
    const restUrl = sandbox?.restUrl ?? flags.baseUrl ?? client.baseUrl;
    const token = sandbox?.token ?? (flags.token?.trim() || process.env.FLESPI_TOKEN?.trim() || '');
    const broker = mqttUrl ?? sandbox?.mqttUrl;
    log.info(
      sandbox
        ? `no FLESPI_TOKEN set: checking the built-in flespi sandbox (REST ${sandbox.restUrl}, MQTT ${sandbox.mqttUrl}); set FLESPI_TOKEN to check your flespi account`
        : `checking ${client.baseUrl} (read-only, at most 45 s)`,
    );
    const report = await runDoctor({ restUrl, mqttUrl: broker, token, channel: wanted, sandbox: sandbox !== undefined, appName: 'flespi-receiver-doctor' });
    const target = report.channel ? `channel ${report.channel.id} "${report.channel.name}"` : 'no channel';
    const lines = [
      `flespi doctor: ${report.restUrl}${report.mqttUrl ? `, MQTT ${report.mqttUrl}` : ''}, ${target}`,
      ...report.checks.map(doctorLine),
      `${doctorSummary(report)}${report.ok ? '' : ': fix what failed, then run the doctor again'}`,
    ];
    process.stdout.write(lines.map((line) => terminalLine(line)).join('\n') + '\n');
    return report.ok ? 0 : 1;
  } finally {
    await sandbox?.stop();
  }
}
