//! `RealTimeRecordCommand`: start / stop / cancel_delay / restart one stream's recording.
//! Checks in DESIGN.md's order: parameters → domain → (in the recorder) record config → state.

use liverec_hub::StreamKey;
use liverec_recorder::{Command, CommandReply};

use super::Reply;
use super::common;
use crate::ApiState;
use crate::error::ApiError;
use crate::params::Params;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealTimeRecordCommand {
    pub key: StreamKey,
    pub command: Command,
}

fn parse_command(value: &str) -> Option<Command> {
    match value {
        "start" => Some(Command::Start),
        "stop" => Some(Command::Stop),
        "cancel_delay" => Some(Command::CancelDelay),
        "restart" => Some(Command::Restart),
        _ => None,
    }
}

impl RealTimeRecordCommand {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let domain = common::domain(params)?;
        // One stream only: no wildcards (ERRORS.md "RealTimeRecordCommand" 9).
        let app = common::name("AppName", params.required("AppName")?, false)?;
        let stream = common::name("StreamName", params.required("StreamName")?, false)?;
        let command =
            parse_command(params.required("Command")?).ok_or(ApiError::Malformed("Command"))?;
        Ok(Self {
            key: StreamKey {
                domain,
                app,
                stream,
            },
            command,
        })
    }

    pub async fn handle(self, state: &ApiState) -> Result<Reply, ApiError> {
        common::check_domain(state, &self.key.domain).await?;
        let reply = state
            .recorder
            .command(self.key, self.command)
            .await
            .map_err(|e| ApiError::Internal(format!("recorder: {e}")))?;
        match reply {
            CommandReply::Done => Ok(Reply::new()),
            CommandReply::AlreadyStarted => Err(ApiError::TaskAlreadyStarted),
            CommandReply::NotPublishing => Err(ApiError::StreamNotFound),
            CommandReply::NoConfig => Err(ApiError::ConfigNotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<RealTimeRecordCommand, ApiError> {
        RealTimeRecordCommand::parse(&Params::parse(q.as_bytes(), None, 4096).unwrap())
    }

    #[test]
    fn parses_every_command() {
        for (word, command) in [
            ("start", Command::Start),
            ("stop", Command::Stop),
            ("cancel_delay", Command::CancelDelay),
            ("restart", Command::Restart),
        ] {
            let c = parse(&format!(
                "DomainName=Example.com&AppName=live&StreamName=s1&Command={word}"
            ))
            .unwrap();
            assert_eq!(c.command, command);
            assert_eq!(c.key.domain, "example.com");
        }
    }

    #[test]
    fn missing_and_invalid_parameters_in_documented_order() {
        let cases = [
            ("AppName=a&StreamName=s&Command=start", "MissingDomainName"),
            (
                "DomainName=d.com&StreamName=s&Command=start",
                "MissingAppName",
            ),
            (
                "DomainName=d.com&AppName=a&Command=start",
                "MissingStreamName",
            ),
            ("DomainName=d.com&AppName=a&StreamName=s", "MissingCommand"),
            (
                "DomainName=d.com&AppName=a&StreamName=s&Command=",
                "MissingCommand",
            ),
            (
                "DomainName=d.com&AppName=a&StreamName=s&Command=START",
                "InvalidCommand.Malformed",
            ),
            (
                "DomainName=d.com&AppName=a&StreamName=s&Command=pause",
                "InvalidCommand.Malformed",
            ),
            (
                "DomainName=d.com&AppName=a&StreamName=*&Command=start",
                "InvalidParameter",
            ),
            (
                "DomainName=d.com&AppName=*&StreamName=s&Command=start",
                "InvalidParameter",
            ),
            (
                "DomainName=d.com&AppName=a&StreamName=s%2Fx&Command=start",
                "InvalidParameter",
            ),
            (
                "DomainName=a%2Fb&AppName=a&StreamName=s&Command=start",
                "InvalidParameter",
            ),
            ("StreamName=s&Command=start", "MissingDomainName"),
        ];
        for (q, code) in cases {
            assert_eq!(parse(q).unwrap_err().code(), code, "{q}");
        }
        assert_eq!(
            parse("DomainName=d.com&AppName=a&StreamName=s")
                .unwrap_err()
                .message(),
            "Command is mandatory for this Command."
        );
    }
}
