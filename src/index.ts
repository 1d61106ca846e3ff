/**
 * mailmover's library API.
 *
 * ```ts
 * import { migrate } from 'mailmover';
 * const report = await migrate({
 *   from: { url: 'imaps://alice@old.example.com', password: process.env.OLD_PW! },
 *   to: { url: 'imaps://alice@new.example.com', password: process.env.NEW_PW! },
 *   onEvent: (e) => { if (e.type === 'progress') console.log(e.counters.copied) },
 *   signal: AbortSignal.timeout(3_600_000),
 * });
 * ```
 */
export { migrate, type MigrateOptions, type EndpointOptions, type ScanOptions } from './job/migrate.js';
export { verify, type VerifyOptions, type VerifyReport, type VerifyFolderReport, type VerifyDifference, type VerifyMode, type DestinationOnlyFolder } from './job/verify.js';
export { tokenFromFile, tokenFromCommand, type TokenProvider } from './core/access-token.js';
export { registerSecret, scrub } from './core/redact.js';
export { DEFAULT_RETRY, backoffDelay, type RetryPolicy } from './copy/retry-policy.js';
export { ClamdClient, parseScanUrl, describeAddress, type ClamdAddress, type ScanVerdict } from './scan/clamd.js';
export type { ScanEngine, ScanPolicy, UnscannedAction } from './scan/content-screen.js';
export type { MigrationReport, MigrationStatus, FolderReport, SkippedItem, ScanReport, ScanVerdictRecord } from './job/report.js';
export type { MigrationEvent, ProgressCounters, EventListener } from './job/events.js';
export type { DailyBudgets } from './copy/daily-budget.js';
export { MigrateError, ERROR_CODES, isMigrateError, type ErrorCode, type ErrorScope, type RetryClass } from './core/errors.js';
export { parseEndpoint, type Endpoint } from './core/endpoint.js';
export { planFolders, type FolderPlan, type FolderPlanEntry, type FolderCollision, type ExcludedFolder, type MappedBy } from './plan/folder-plan.js';
export { parseFolderRules, DEFAULT_RULES, type FolderRules, type FolderRuleOptions, type RenameRule } from './plan/folder-rules.js';
export { specialRoleOf, viewRoleOf, specialFolders, type SpecialRole, type ViewRole } from './plan/special-use.js';
export { planMessages, matchMessages, batchMessages, type MessagePlan, type MessageMatch, type MatchPass, type BatchLimits } from './plan/message-plan.js';
export type { MailStore, StoreCaps, FolderInfo, MessageMeta, FolderStatus, AppendItem, AppendOutcome, FetchOutcome } from './stores/mail-store.js';
export { VERSION } from './version.js';
