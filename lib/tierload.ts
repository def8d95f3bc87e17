/**
 * tierload as a library: everything a user's own files import, from one place. An adapter (tier 2) uses
 * tier 3 and the step helpers; a file of cases uses `suite`; a load scenario uses `scenario`; either starts the
 * application, when no --url is given, with `startApplication`.
 *
 *   import { confirm, createSession, fetchPage, scenario, step, submitPageForm, suite } from "tierload";
 *
 * In a clone of the repository, import "./lib/tierload.ts" (or "../../lib/tierload.ts" from examples/<app>/).
 */
export {
  createSession,
  excerpt,
  fetchData,
  fetchOne,
  fetchPage,
  FormNotFoundError,
  type FormValue,
  type FormValues,
  HttpError,
  type Page,
  type Params,
  post,
  queryAll,
  queryOne,
  queryRows,
  request,
  RequestError,
  type RequestRecord,
  type Session,
  type SessionOptions,
  submitForm,
} from "./fetchData.ts";
export { actAs, confirm, serverMessage, step, StepError, submitPageForm, usernameOf, userOf } from "./steps.ts";
export { type Basics, type Case, type Result, type Suite, suite, type SuiteDefinition } from "./suite.ts";
export { kubernetesJob, main as loadMain, scenario } from "./load-cli.ts";
export type { AnyScenario, CheckAnswer, CheckContext, Scenario, StartedApp, VirtualUser } from "./scenario.ts";
export { type LoadOptions, parseLoadOptions } from "./load-options.ts";
export { type RunIO, runLoad } from "./runner.ts";
export type { EndCheck, Results } from "./results.ts";
export { merge } from "./merge.ts";
export { readResultsFrom } from "./results-file.ts";
export { formatReport } from "./report.ts";
export { renderReport } from "./report-html.ts";
export { integer, isMain, number, runMain } from "./cli.ts";
export { type ApplicationOptions, startApplication } from "./application.ts";
