// Keys and messages of the collectives (packages/allreduce). Owned by the allreduce work.
export {};
