// The base of every error the emulator returns on the wire: a status code,
// extra headers and a JSON body in the shape of the service being emulated.

export abstract class ServiceError extends Error {
  abstract readonly statusCode: number;
  readonly headers: Record<string, string> = {};

  /** The JSON body sent to the client. */
  abstract body(): unknown;
}
