/** The two fake ports of one simulated node-plugin process, sharing a crash switch and a timeline. */
import { CrashSwitch } from './crash.js';
import { FakeDatapathMaps } from './fake-maps.js';
import { FakeXfrmKernel } from './fake-xfrm-kernel.js';
import { Timeline } from './timeline.js';

export interface FakePorts {
  readonly crash: CrashSwitch;
  readonly timeline: Timeline;
  readonly xfrm: FakeXfrmKernel;
  readonly maps: FakeDatapathMaps;
}

export function createFakePorts(options: { readonly clock?: () => number } = {}): FakePorts {
  const crash = new CrashSwitch();
  const timeline = new Timeline();
  return {
    crash,
    timeline,
    xfrm: new FakeXfrmKernel({ crash, timeline, ...(options.clock ? { clock: options.clock } : {}) }),
    maps: new FakeDatapathMaps({ crash, timeline }),
  };
}
