/**
 * The batch report by e-mail, through nodemailer (SMTP). TLS certificates are always verified;
 * `requireTls` makes a plain smtp:// connection refuse to go on without STARTTLS (the caller asks
 * for it for every relay that is not on this machine).
 */
import path from 'node:path';
import nodemailer from 'nodemailer';

/** An SMTP relay, parsed from `smtp://[USER@]HOST[:PORT]` or `smtps://...`. */
export interface SmtpTarget {
  secure: boolean;
  host: string;
  port: number;
  user?: string;
}

/** One message to send. */
export interface EmailMessage {
  smtp: SmtpTarget;
  password?: string;
  requireTls: boolean;
  from: string;
  to: string[];
  subject: string;
  text: string;
  /** Files attached as they are on disk (their names kept). */
  attachments: string[];
}

/** Sends the message; rejects with nodemailer's error (the caller scrubs and reports it). */
export async function sendEmail(m: EmailMessage): Promise<void> {
  const transport = nodemailer.createTransport({
    host: m.smtp.host,
    port: m.smtp.port,
    secure: m.smtp.secure,
    requireTLS: m.requireTls,
    tls: { rejectUnauthorized: true, servername: m.smtp.host },
    ...(m.smtp.user ? { auth: { user: m.smtp.user, pass: m.password ?? '' } } : {}),
    // Bounded waits: a notification must not hold the end of the batch for minutes.
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
    disableFileAccess: false,
    disableUrlAccess: true,
  });
  try {
    await transport.sendMail({
      from: m.from,
      to: m.to,
      subject: m.subject,
      text: m.text,
      attachments: m.attachments.map((file) => ({ filename: path.basename(file), path: file, contentType: file.endsWith('.json') ? 'application/json' : 'text/markdown; charset=utf-8' })),
    });
  } finally {
    transport.close();
  }
}
