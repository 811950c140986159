import { servicesGlobalSetup } from '@lits-ddp/local-services/vitest';

export default servicesGlobalSetup({ mlflow: true });
