/**
 * The wire layer of berkeleyd: message types, the datagram codec, node ids
 * and key files. Pure: nothing here opens a socket or reads a clock.
 * The format is documented in docs/protocol.md.
 */

export * from './messages.js';
export {
  HEADER_BYTES,
  TAG_BYTES,
  adjustCapacity,
  decode,
  encode,
  encodingLength,
  splitAdjust,
  type DecodeOptions,
  type EncodeAuth,
} from './codec.js';
export {
  FAMILY_IPV4,
  FAMILY_IPV6,
  formatIPv6,
  isLinkLocalIPv6,
  isUnspecified,
  parseIPv4,
  parseIPv6,
  resolveAdvertised,
} from './address.js';
export { MAX_NODE_ID, formatNodeId, nodeIdOf } from './ids.js';
export {
  KEY_ALGORITHM,
  MAX_KEY_ID,
  MIN_KEY_BYTES,
  MIN_KEY_ID,
  createKeyring,
  generateKeyFile,
  parseKeyFile,
  type Keyring,
  type ParseKeyFileResult,
} from './keys.js';
