/** In-memory fakes of the node plugin's kernel ports; see README.md beside this file. */
export { CrashSwitch, SimulatedCrash } from './crash.js';
export { FakeDatapathMaps } from './fake-maps.js';
export type { FakeDatapathMapsOptions, LoggedMapsCall, MapsOperation } from './fake-maps.js';
export { ERRNO, FakeXfrmKernel } from './fake-xfrm-kernel.js';
export type { FakeXfrmKernelOptions, FaultOptions, LoggedChange } from './fake-xfrm-kernel.js';
export { createFakePorts } from './fake-ports.js';
export type { FakePorts } from './fake-ports.js';
export { Timeline } from './timeline.js';
