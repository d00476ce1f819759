//! Why the switch refuses or ends a call on its own, and what it answers: the one reply
//! table (SPEC.md "Call admission" and the switch's own failures). The engine, `vts route`
//! and, later, the API and panel read the same table.

/// Why the switch refuses a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// The source address is on the block list (checked for every request).
    Blacklisted,
    /// More INVITEs a second from the source address than the flood threshold.
    RateLimited,
    /// The source address belongs to no active customer.
    IpNotAuthorized,
    /// The customer is disabled or suspended.
    AccountSuspended,
    /// The customer is blocked (fraud).
    AccountBlocked,
    /// The switch has its maximum of calls in progress.
    SystemCapacity,
    /// The switch's new calls exceed its calls per second.
    SystemCps,
    /// The customer already has its maximum of calls in progress.
    ChannelLimit,
    /// The customer's new calls exceed its calls per second.
    CpsLimit,
    /// No carrier can take the call.
    NoRoutes,
    /// Every carrier left is at its channel or CPS limit.
    CarriersAtCapacity,
    /// No carrier's prefix rules take the destination.
    NoRouteForDestination,
    /// The dialled number cannot be read in the customer's number format.
    InvalidNumber,
    /// The customer's dialing plan refuses the destination.
    DestinationNotAllowed,
    /// The customer's daily minutes are used up (calls in progress counted).
    DailyMinutes,
    /// The customer's monthly minutes are used up (calls in progress counted).
    MonthlyMinutes,
    /// No balance (prepaid) or credit (postpaid) left, answered 402.
    PaymentRequired,
    /// The same, answered 403 (`billing.refuse_code`).
    InsufficientBalance,
    /// The switch is shutting down.
    ShuttingDown,
    /// The write-ahead log of CDRs reached its bound while the database is away: a call
    /// now could not be recorded durably.
    CdrLogFull,
    /// The transaction table is at `sip.max_transactions` (answered statelessly).
    TooManyTransactions,
    /// `sip.max_calls_in_setup` calls are being set up (answered statelessly).
    TooManyCallsInSetup,
    /// The request carries one of the switch's own branches, or the only carriers left are
    /// the switch itself.
    Loop,
    /// No codec of the offer is allowed by any carrier left.
    NoCodec,
    /// A carrier left cannot be reached (its host is not an IP address).
    CarrierUnusable,
    /// The last carrier sent nothing within the first-response timeout.
    NoResponse,
    /// The carrier rang past the ring timeout.
    RingTimeout,
    /// The caller cancelled before an answer.
    Cancelled,
}

impl Reject {
    /// Every refusal, in declaration order (`ALL[r as usize] == r`).
    pub const ALL: [Reject; 28] = [
        Reject::Blacklisted,
        Reject::RateLimited,
        Reject::IpNotAuthorized,
        Reject::AccountSuspended,
        Reject::AccountBlocked,
        Reject::SystemCapacity,
        Reject::SystemCps,
        Reject::ChannelLimit,
        Reject::CpsLimit,
        Reject::NoRoutes,
        Reject::CarriersAtCapacity,
        Reject::NoRouteForDestination,
        Reject::InvalidNumber,
        Reject::DestinationNotAllowed,
        Reject::DailyMinutes,
        Reject::MonthlyMinutes,
        Reject::PaymentRequired,
        Reject::InsufficientBalance,
        Reject::ShuttingDown,
        Reject::CdrLogFull,
        Reject::TooManyTransactions,
        Reject::TooManyCallsInSetup,
        Reject::Loop,
        Reject::NoCodec,
        Reject::CarrierUnusable,
        Reject::NoResponse,
        Reject::RingTimeout,
        Reject::Cancelled,
    ];

    /// A stable snake_case name: the `reason` label of `vts_admission_refusals_total`.
    pub fn name(self) -> &'static str {
        match self {
            Reject::Blacklisted => "blacklisted",
            Reject::RateLimited => "rate_limited",
            Reject::IpNotAuthorized => "ip_not_authorized",
            Reject::AccountSuspended => "account_suspended",
            Reject::AccountBlocked => "account_blocked",
            Reject::SystemCapacity => "system_capacity",
            Reject::SystemCps => "system_cps",
            Reject::ChannelLimit => "channel_limit",
            Reject::CpsLimit => "cps_limit",
            Reject::NoRoutes => "no_routes",
            Reject::CarriersAtCapacity => "carriers_at_capacity",
            Reject::NoRouteForDestination => "no_route_for_destination",
            Reject::InvalidNumber => "invalid_number",
            Reject::DestinationNotAllowed => "destination_not_allowed",
            Reject::DailyMinutes => "daily_minutes",
            Reject::MonthlyMinutes => "monthly_minutes",
            Reject::PaymentRequired => "payment_required",
            Reject::InsufficientBalance => "insufficient_balance",
            Reject::ShuttingDown => "shutting_down",
            Reject::CdrLogFull => "cdr_log_full",
            Reject::TooManyTransactions => "too_many_transactions",
            Reject::TooManyCallsInSetup => "too_many_calls_in_setup",
            Reject::Loop => "loop",
            Reject::NoCodec => "no_codec",
            Reject::CarrierUnusable => "carrier_unusable",
            Reject::NoResponse => "no_response",
            Reject::RingTimeout => "ring_timeout",
            Reject::Cancelled => "cancelled",
        }
    }

    /// Status and reason phrase of the reply (SPEC.md "Call admission"): the one table of
    /// the switch's own refusals, which are also the CDR's final code and reason.
    pub fn reply(self) -> (u16, &'static str) {
        match self {
            Reject::Blacklisted => (403, "Forbidden - Blacklisted"),
            Reject::RateLimited => (503, "Service Unavailable - Rate Limited"),
            Reject::IpNotAuthorized => (403, "Forbidden - IP Not Authorized"),
            Reject::AccountSuspended => (403, "Forbidden - Account Suspended"),
            Reject::AccountBlocked => (403, "Forbidden - Account Blocked"),
            Reject::SystemCapacity => (503, "Service Unavailable - System Capacity Reached"),
            Reject::SystemCps => (503, "Service Unavailable - System CPS Limit"),
            Reject::ChannelLimit => (486, "Busy Here - Channel Limit Exceeded"),
            Reject::CpsLimit => (503, "Service Unavailable - CPS Limit Exceeded"),
            Reject::NoRoutes => (503, "Service Unavailable - No Routes"),
            Reject::CarriersAtCapacity => (503, "Service Unavailable - Carriers at Capacity"),
            Reject::NoRouteForDestination => (404, "Not Found - No Route for Destination"),
            Reject::InvalidNumber => (484, "Address Incomplete"),
            Reject::DestinationNotAllowed => (403, "Forbidden - Destination Not Allowed"),
            Reject::DailyMinutes => (486, "Busy Here - Daily Minutes Exhausted"),
            Reject::MonthlyMinutes => (486, "Busy Here - Monthly Minutes Exhausted"),
            Reject::PaymentRequired => (402, "Payment Required"),
            Reject::InsufficientBalance => (403, "Forbidden - Insufficient Balance"),
            Reject::ShuttingDown => (503, "Service Unavailable - Shutting Down"),
            Reject::CdrLogFull => (503, "Service Unavailable - CDR Log Full"),
            Reject::TooManyTransactions => (503, "Service Unavailable - Too Many Transactions"),
            Reject::TooManyCallsInSetup => (503, "Service Unavailable - Too Many Calls in Setup"),
            Reject::Loop => (482, "Loop Detected"),
            Reject::NoCodec => (488, "Not Acceptable Here"),
            Reject::CarrierUnusable => (503, "Service Unavailable"),
            Reject::NoResponse => (408, "Request Timeout"),
            Reject::RingTimeout => (408, "Request Timeout - Ring Timeout"),
            Reject::Cancelled => (487, "Request Terminated"),
        }
    }
}

#[cfg(test)]
mod all_tests {
    use super::Reject;

    #[test]
    fn all_is_in_declaration_order_and_names_are_distinct() {
        for (i, r) in Reject::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
        let mut names: Vec<&str> = Reject::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Reject::ALL.len());
    }
}
