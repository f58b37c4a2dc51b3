//! `fieldbook serve --config fieldbook.toml`: every server setting in one file, each named as
//! its flag (`listen = "0.0.0.0:8080"`, `database-url = "postgres://…"`, `trusted-proxy =
//! ["10.0.0.2"]`). The file sits under environment variables and flags: a flag beats its
//! environment variable, which beats the file, which beats the default. It works by putting
//! the file's settings on the command line where neither a flag nor a variable gives them,
//! so every setting is checked by the same parser, whichever layer it came from.
//! `--print-config` shows the settings in force and where each came from, secrets masked.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ArgMatches;

/// The config file's path from the environment when no `--config` is given.
pub const CONFIG_ENV: &str = "FIELDBOOK_CONFIG";
/// Flags that are about the file or the command, not settings.
const NOT_SETTINGS: &[&str] = &["config", "print-config", "help", "version"];

/// Where each setting given came from.
#[derive(Debug, Default)]
pub struct Sources {
    pub file: Option<PathBuf>,
    from_file: BTreeSet<String>,
    from_flags: BTreeSet<String>,
}

/// The command line with the config file's settings added where neither a flag nor an
/// environment variable gives them. `command` is the whole CLI.
pub fn layer(args: Vec<OsString>, command: &clap::Command) -> Result<(Vec<OsString>, Sources), String> {
    let Some(at) = args.iter().position(|a| a == "serve") else { return Ok((args, Sources::default())) };
    let given: Vec<String> = args[at + 1..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let flag_value = |name: &str| {
        let long = format!("--{name}");
        given.iter().enumerate().find_map(|(i, a)| {
            a.strip_prefix(&format!("{long}="))
                .map(str::to_owned)
                .or_else(|| (a == &long).then(|| given.get(i + 1).cloned()).flatten())
        })
    };
    let from_flags = given
        .iter()
        .filter_map(|a| a.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_owned())
        .collect();
    let mut sources = Sources { from_flags, ..Sources::default() };
    let path = flag_value("config").or_else(|| std::env::var(CONFIG_ENV).ok().filter(|p| !p.is_empty()));
    let Some(path) = path.map(PathBuf::from) else { return Ok((args, sources)) };
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    let table: toml::Table = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
    let settings = settings(command);
    let mut added = Vec::new();
    for (key, value) in table {
        let name = key.replace('_', "-");
        let Some(env) = settings.get(&name) else {
            let known: Vec<&str> = settings.keys().map(String::as_str).collect();
            return Err(format!("{}: unknown setting {key:?}; the settings are: {}", path.display(), known.join(", ")));
        };
        let values = match value {
            toml::Value::Array(items) => items.into_iter().map(|v| scalar(&name, v)).collect::<Result<Vec<_>, _>>()?,
            other => vec![scalar(&name, other)?],
        };
        let env_set = env.as_ref().is_some_and(|e| std::env::var_os(e).is_some_and(|v| !v.is_empty()));
        if sources.from_flags.contains(&name) || env_set {
            continue;
        }
        added.extend(values.into_iter().map(|v| OsString::from(format!("--{name}={v}"))));
        sources.from_file.insert(name);
    }
    sources.file = Some(path);
    let mut args = args;
    args.splice(at + 1..at + 1, added);
    Ok((args, sources))
}

/// Every setting `serve` takes (its own and the global ones), with its environment variable.
fn settings(command: &clap::Command) -> BTreeMap<String, Option<String>> {
    let serve = command.find_subcommand("serve").expect("the serve command");
    command
        .get_arguments()
        .filter(|a| a.is_global_set())
        .chain(serve.get_arguments())
        .filter_map(|a| {
            let long = a.get_long()?;
            (!NOT_SETTINGS.contains(&long))
                .then(|| (long.to_owned(), a.get_env().map(|e| e.to_string_lossy().into_owned())))
        })
        .collect()
}

fn scalar(name: &str, value: toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s),
        toml::Value::Integer(n) => Ok(n.to_string()),
        toml::Value::Float(n) => Ok(n.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!("{name}: expected a string, number or list of them, not {}", other.type_str())),
    }
}

/// The settings in force, one `name = "value"  # where it came from` line each, as a config
/// file would hold them (so the output is a starting point for one); secrets masked.
pub fn describe(command: &clap::Command, matches: &ArgMatches, serve: &ArgMatches, sources: &Sources) -> String {
    let mut out = String::from(
        "# Settings in force: a flag beats its environment variable, which beats the config file,\n\
         # which beats the default.\n",
    );
    for (name, env) in settings(command) {
        let id = name.replace('-', "_");
        let matches = if serve.try_get_raw(&id).is_ok() { serve } else { matches };
        let Ok(Some(raw)) = matches.try_get_raw(&id) else {
            out.push_str(&format!("# {name}: not set\n"));
            continue;
        };
        let values: Vec<String> = raw.map(|v| mask(&name, &v.to_string_lossy())).collect();
        let source = if sources.from_flags.contains(&name) {
            "flag".to_owned()
        } else if sources.from_file.contains(&name) {
            format!("config file {}", sources.file.as_ref().map(|p| p.display().to_string()).unwrap_or_default())
        } else if matches.value_source(&id) == Some(clap::parser::ValueSource::EnvVariable) {
            format!("environment {}", env.unwrap_or_default())
        } else {
            "default".to_owned()
        };
        let quoted: Vec<String> = values.iter().map(|v| toml::Value::String(v.clone()).to_string()).collect();
        let value = if quoted.len() == 1 { quoted[0].clone() } else { format!("[{}]", quoted.join(", ")) };
        out.push_str(&format!("{name} = {value}  # {source}\n"));
    }
    if std::env::var_os(crate::auth::keys::KEYS_ENV).is_some() {
        out.push_str(&format!("# token-signing keys: from {} (not shown)\n", crate::auth::keys::KEYS_ENV));
    }
    out
}

/// A database URL's password becomes `****`.
fn mask(name: &str, value: &str) -> String {
    if name != "database-url" {
        return value.to_owned();
    }
    let Some((scheme, rest)) = value.split_once("://") else { return value.to_owned() };
    match rest.split_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:****@{host}"),
            None => value.to_owned(),
        },
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_database_urls_are_masked() {
        assert_eq!(mask("database-url", "postgres://fb:hunter2@db:5432/fb"), "postgres://fb:****@db:5432/fb");
        assert_eq!(mask("database-url", "postgres://fb@db/fb"), "postgres://fb@db/fb");
        assert_eq!(mask("database-url", "sqlite:data/f.sqlite"), "sqlite:data/f.sqlite");
        assert_eq!(mask("public-url", "https://a:b@c"), "https://a:b@c");
    }
}
