//! One bounded HTTP client for everything ecs-prom fetches: a deadline on the whole
//! exchange, a limit on the body (after decompression too), headers chosen by the caller, and
//! redirects never followed.
