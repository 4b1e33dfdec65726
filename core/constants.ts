/**
 * Names and numbers shared by every part of kmesh-ipsec. Values marked "Kmesh" must stay
 * byte-for-byte compatible with Kmesh, because mixed clusters read the same objects.
 */

/** Namespace of the IPsec Secret and of every KmeshNodeInfo (Kmesh). */
export const KMESH_NAMESPACE = 'kmesh-system';
/** Name of the Secret holding the pre-shared key (Kmesh). */
export const SECRET_NAME = 'kmesh-ipsec';
/** The one data key inside that Secret (Kmesh). */
export const SECRET_DATA_KEY = 'ipSec';
/** The only AEAD the kernel side is built for (Kmesh). */
export const AEAD_ALGORITHM = 'rfc4106(gcm(aes))';
/** ICV lengths, in bits, that rfc4106 accepts. */
export const ICV_BITS_ALLOWED = [64, 96, 128] as const;
/** ICV written when the secret omits `length` (Kmesh always writes 128). */
export const DEFAULT_ICV_BITS = 128;
/** Pre-shared key length: 32-byte AES-256 key followed by a 4-byte GCM salt (Kmesh). */
export const PSK_BYTES = 36;
/** Largest SPI we accept: Kmesh stores it in a Go int and the kernel reserves nothing below 2^31. */
export const SPI_MAX = 0x7fffffff;

/** KmeshNodeInfo CRD coordinates (Kmesh). */
export const KNI_GROUP = 'kmesh.net';
export const KNI_VERSION = 'v1alpha1';
export const KNI_API_VERSION = `${KNI_GROUP}/${KNI_VERSION}`;
export const KNI_KIND = 'KmeshNodeInfo';
export const KNI_PLURAL = 'kmeshnodeinfos';
/** Annotation carrying the webhook's signed validity stamp. */
export const VALIDITY_ANNOTATION = 'kmesh.net/validity';
