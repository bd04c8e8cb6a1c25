import { cpus } from 'node:os';
import { Referenceable, type RemoteCall, toText } from '../pb/index.js';
import { VERSION } from '../version.js';

/**
 * The minimum a Buildbot master needs from a worker to attach it: the probe
 * answers the attach calls like a worker with no builders' work to do, and
 * remembers what the master said.
 */
export class ProbeMind extends Referenceable {
  readonly printed: string[] = [];
  builders: string[] = [];

  remote_print(call: RemoteCall): null {
    this.printed.push(toText(call.arg(0, 'message')) ?? '');
    return null;
  }

  remote_getWorkerInfo(): Map<string, unknown> {
    return new Map<string, unknown>([
      ['admin', 'bbgate probe'],
      ['host', 'bbgate probe (not a build host)'],
      ['environ', new Map()],
      ['system', 'posix'],
      ['basedir', ''],
      ['numcpus', cpus().length],
      ['version', `bbgate-probe ${VERSION}`],
      ['worker_commands', new Map()],
      ['delete_leftover_dirs', 0],
    ]);
  }

  remote_getCommands(): Map<string, string> {
    return new Map();
  }

  remote_getVersion(): string {
    return `bbgate-probe ${VERSION}`;
  }

  remote_setBuilderList(call: RemoteCall): Map<string, Referenceable> {
    const wanted = call.arg(0, 'wanted');
    const names = Array.isArray(wanted) ? wanted.map((w) => toText(Array.isArray(w) ? w[0] : undefined) ?? '') : [];
    this.builders = names;
    return new Map(names.map((name) => [name, new ProbeBuilder(this)]));
  }
}

/** A builder that only answers the master's attach-time `print`. */
class ProbeBuilder extends Referenceable {
  constructor(private readonly mind: ProbeMind) {
    super();
  }

  remote_print(call: RemoteCall): null {
    return this.mind.remote_print(call);
  }
}
