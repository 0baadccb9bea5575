/**
 * Message type bytes of protocol 3.0 (PostgreSQL docs "Message Formats"), named once: no other file spells them as
 * raw numbers. Frontend and backend codes overlap ('D' is Describe from the client and DataRow from the server),
 * hence two tables.
 */
const code = (letter: string): number => letter.charCodeAt(0);

/** Client → server. */
export const FrontendMessage = {
  Query: code('Q'),
  Parse: code('P'),
  Bind: code('B'),
  Execute: code('E'),
  Describe: code('D'),
  Close: code('C'),
  Sync: code('S'),
  Flush: code('H'),
  Terminate: code('X'),
  FunctionCall: code('F'),
  CopyData: code('d'),
  CopyDone: code('c'),
  CopyFail: code('f'),
  /** PasswordMessage, and also SASLInitialResponse / SASLResponse. */
  Password: code('p'),
} as const;

/** Server → client. */
export const BackendMessage = {
  Authentication: code('R'),
  BackendKeyData: code('K'),
  ParameterStatus: code('S'),
  ReadyForQuery: code('Z'),
  RowDescription: code('T'),
  DataRow: code('D'),
  CommandComplete: code('C'),
  EmptyQueryResponse: code('I'),
  PortalSuspended: code('s'),
  FunctionCallResponse: code('V'),
  ErrorResponse: code('E'),
  NoticeResponse: code('N'),
  NotificationResponse: code('A'),
  CopyData: code('d'),
} as const;

/** ReadyForQuery's transaction status. */
export const TransactionStatus = {
  Idle: code('I'),
  InBlock: code('T'),
  Failed: code('E'),
} as const;

/** The answer to an SSLRequest that accepts it. */
export const SSL_ACCEPTED = code('S');
