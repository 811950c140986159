export { CoordinatorClient, CoordinatorApiError, type ClientOptions } from './coordinator-client.js';
