import { servicesGlobalSetup } from '../src/vitest.js';

// The tests start their own servers; this only proves the binaries are available (or says why not).
export default servicesGlobalSetup({ redis: true, mlflow: true });
