/** A usage error: bad option value, port in use, no such interface. Exits 2 with its message, no stack. */
export class UsageError extends Error {}
