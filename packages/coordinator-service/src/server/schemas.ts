import { ErrorReply as ApiErrorReply } from '@lits-ddp/protocol';

/**
 * What the routes add to protocol's API schemas (`api-schemas.ts`, the one description of the REST API):
 * only what concerns Fastify.
 */

/** Protocol's ErrorReply under an $id, as every route's error replies have always been compiled. */
export const ErrorReply = { ...ApiErrorReply, $id: 'Error' };
