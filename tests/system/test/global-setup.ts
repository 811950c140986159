import { servicesGlobalSetup } from '@lits-ddp/local-services/vitest';

export default servicesGlobalSetup({ redis: true, mlflow: true });
