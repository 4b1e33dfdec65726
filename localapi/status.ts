/**
 * metav1.Status bodies. kubectl and client-node print `message` verbatim and branch on
 * `reason`/`code`, so every failure the double produces goes through these builders with the
 * same wording kube-apiserver uses.
 */

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code?: number;
}

/** A group plus plural resource name: what NotFound/Conflict/AlreadyExists messages name. */
export interface GroupResource {
  group: string;
  resource: string;
}

/** Thrown anywhere in the request path; the HTTP layer turns it into the response. */
export class StatusError extends Error {
  readonly status: Status;

  constructor(status: Omit<Status, 'kind' | 'apiVersion' | 'metadata' | 'status'> & { code: number }) {
    super(status.message ?? status.reason ?? 'error');
    this.status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', ...status };
  }

  get code(): number {
    return this.status.code ?? 500;
  }
}

export function qualified(gr: GroupResource): string {
  return gr.group === '' ? gr.resource : `${gr.resource}.${gr.group}`;
}

function details(gr: GroupResource, name: string): StatusDetails {
  return { name, ...(gr.group === '' ? {} : { group: gr.group }), kind: gr.resource };
}

export function notFound(gr: GroupResource, name: string): StatusError {
  return new StatusError({
    message: `${qualified(gr)} "${name}" not found`,
    reason: 'NotFound',
    details: details(gr, name),
    code: 404,
  });
}

export function alreadyExists(gr: GroupResource, name: string): StatusError {
  return new StatusError({
    message: `${qualified(gr)} "${name}" already exists`,
    reason: 'AlreadyExists',
    details: details(gr, name),
    code: 409,
  });
}

/** The optimistic-concurrency failure every controller retries on. */
export function conflict(gr: GroupResource, name: string, why = 'the object has been modified; please apply your changes to the latest version and try again'): StatusError {
  return new StatusError({
    message: `Operation cannot be fulfilled on ${qualified(gr)} "${name}": ${why}`,
    reason: 'Conflict',
    details: details(gr, name),
    code: 409,
  });
}

export function badRequest(message: string): StatusError {
  return new StatusError({ message, reason: 'BadRequest', code: 400 });
}

export function unauthorized(): StatusError {
  return new StatusError({ message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
}

export function forbidden(gr: GroupResource, name: string, why: string): StatusError {
  const subject = name === '' ? qualified(gr) : `${qualified(gr)} "${name}"`;
  return new StatusError({
    message: `${subject} is forbidden: ${why}`,
    reason: 'Forbidden',
    details: details(gr, name),
    code: 403,
  });
}

/** The apiserver's "the server could not find the requested resource" for unknown paths. */
export function resourceNotFound(): StatusError {
  return new StatusError({
    message: 'the server could not find the requested resource',
    reason: 'NotFound',
    details: {},
    code: 404,
  });
}

export function methodNotAllowed(): StatusError {
  return new StatusError({
    message: 'the server does not allow this method on the requested resource',
    reason: 'MethodNotAllowed',
    details: {},
    code: 405,
  });
}

export function unsupportedMediaType(contentType: string): StatusError {
  return new StatusError({
    message: `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got ${contentType})`,
    reason: 'UnsupportedMediaType',
    code: 415,
  });
}

export function gone(message: string): StatusError {
  return new StatusError({ message, reason: 'Expired', code: 410 });
}

/** How webhook call failures surface under failurePolicy Fail (apierrors.NewInternalError). */
export function internalError(message: string): StatusError {
  return new StatusError({
    message: `Internal error occurred: ${message}`,
    reason: 'InternalError',
    details: { causes: [{ message }] },
    code: 500,
  });
}

export function requestEntityTooLarge(): StatusError {
  return new StatusError({
    message: 'Request entity too large: limit is 3145728',
    reason: 'RequestEntityTooLarge',
    code: 413,
  });
}

/** DELETE's answer for kinds whose storage does not return the deleted object. */
export function deleteSuccess(gr: GroupResource, name: string, uid: string | undefined): Status {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Success',
    details: { ...details(gr, name), ...(uid === undefined ? {} : { uid }) },
  };
}
