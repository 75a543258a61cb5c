//! `labelSelector` and `fieldSelector` of LIST requests, parsed with the apiserver's grammar and
//! error wording. backup-ns finds pods, PVCs and snapshots by labels, so the operators must mean
//! exactly what they mean in a cluster (`!=` and `notin` also match objects without the key).

use serde_json::Value;

use super::resources::ResourceType;
use super::validation;

#[derive(Debug, PartialEq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
}

/// A parsed label selector: every requirement must hold (comma = AND).
#[derive(Debug, Default)]
pub struct LabelSelector(Vec<(String, Op)>);

#[derive(Debug, PartialEq, Clone)]
enum Token {
    Ident(String),
    Bang,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
}

fn lex(s: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '!' if chars.peek() == Some(&'=') => {
                chars.next();
                out.push(Token::NotEq)
            }
            '!' => out.push(Token::Bang),
            '=' if chars.peek() == Some(&'=') => {
                chars.next();
                out.push(Token::DoubleEq)
            }
            '=' => out.push(Token::Eq),
            '>' => out.push(Token::Gt),
            '<' => out.push(Token::Lt),
            '(' => out.push(Token::Open),
            ')' => out.push(Token::Close),
            ',' => out.push(Token::Comma),
            c => {
                let mut id = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "!=<>(),".contains(n) {
                        break;
                    }
                    id.push(n);
                    chars.next();
                }
                out.push(Token::Ident(id))
            }
        }
    }
    out
}

/// A token as written, for error messages (empty at the end of the selector).
fn show(t: Option<&Token>) -> &str {
    match t {
        None => "",
        Some(Token::Ident(s)) => s,
        Some(Token::Bang) => "!",
        Some(Token::Eq) => "=",
        Some(Token::DoubleEq) => "==",
        Some(Token::NotEq) => "!=",
        Some(Token::Gt) => ">",
        Some(Token::Lt) => "<",
        Some(Token::Open) => "(",
        Some(Token::Close) => ")",
        Some(Token::Comma) => ",",
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn value(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(Token::Ident(v)) => {
                let v = v.clone();
                self.pos += 1;
                Ok(v)
            }
            // `key=` selects the empty value.
            None | Some(Token::Comma) => Ok(String::new()),
            t => Err(format!("found '{}', expected: identifier", show(t))),
        }
    }

    fn set(&mut self) -> Result<Vec<String>, String> {
        match self.next() {
            Some(Token::Open) => {}
            t => return Err(format!("found '{}', expected: '('", show(t.as_ref()))),
        }
        let mut values = Vec::new();
        loop {
            match self.next() {
                Some(Token::Ident(v)) => values.push(v),
                Some(Token::Close) if values.is_empty() => return Ok(values),
                t => {
                    let t = show(t.as_ref());
                    return Err(format!("found '{t}', expected: ',', ')' or identifier"));
                }
            }
            match self.next() {
                Some(Token::Comma) => {}
                Some(Token::Close) => return Ok(values),
                t => {
                    return Err(format!(
                        "found '{}', expected: ',' or ')'",
                        show(t.as_ref())
                    ))
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<(String, Op), String> {
        if self.peek() == Some(&Token::Bang) {
            self.pos += 1;
            return match self.next() {
                Some(Token::Ident(k)) => Ok((k, Op::DoesNotExist)),
                t => Err(format!(
                    "found '{}', expected: identifier after '!'",
                    show(t.as_ref())
                )),
            };
        }
        let key = match self.next() {
            Some(Token::Ident(k)) => k,
            t => {
                return Err(format!(
                    "found '{}', expected: identifier",
                    show(t.as_ref())
                ))
            }
        };
        let op = match self.peek().cloned() {
            None | Some(Token::Comma) => return Ok((key, Op::Exists)),
            Some(Token::Eq) | Some(Token::DoubleEq) => {
                self.pos += 1;
                Op::Eq(self.value()?)
            }
            Some(Token::NotEq) => {
                self.pos += 1;
                Op::NotEq(self.value()?)
            }
            Some(op @ (Token::Gt | Token::Lt)) => {
                self.pos += 1;
                let v = self.value()?;
                let n = v.parse::<i64>().map_err(|_| {
                    format!("for 'Gt', 'Lt' operators, the value must be an integer: {v:?}")
                })?;
                if op == Token::Gt {
                    Op::Gt(n)
                } else {
                    Op::Lt(n)
                }
            }
            Some(Token::Ident(w)) if w == "in" || w == "notin" => {
                self.pos += 1;
                let set = self.set()?;
                if w == "in" {
                    Op::In(set)
                } else {
                    Op::NotIn(set)
                }
            }
            t => {
                let t = show(t.as_ref());
                return Err(format!(
                    "found '{t}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        };
        Ok((key, op))
    }
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut p = Parser {
            tokens: lex(s),
            pos: 0,
        };
        let mut reqs = Vec::new();
        while p.peek().is_some() {
            let (key, op) = p
                .requirement()
                .map_err(|e| format!("unable to parse requirement: {e}"))?;
            validation::label_key(&key).map_err(|e| {
                format!("unable to parse requirement: key: Invalid value: {key:?}: {e}")
            })?;
            let values: Vec<&String> = match &op {
                Op::Eq(v) | Op::NotEq(v) => vec![v],
                Op::In(vs) | Op::NotIn(vs) => vs.iter().collect(),
                _ => vec![],
            };
            for (i, v) in values.iter().enumerate() {
                validation::label_value(v)
                    .map_err(|e| format!("unable to parse requirement: values[{i}][{key}]: Invalid value: {v:?}: {e}"))?;
            }
            reqs.push((key, op));
            match p.next() {
                None | Some(Token::Comma) => {}
                t => {
                    let t = show(t.as_ref());
                    return Err(format!("found '{t}', expected: ',' or 'end of string'"));
                }
            }
        }
        Ok(LabelSelector(reqs))
    }

    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|(key, op)| {
            let v = get(key);
            match op {
                Op::Eq(x) => v == Some(x.as_str()),
                Op::NotEq(x) => v != Some(x.as_str()),
                Op::In(xs) => v.is_some_and(|v| xs.iter().any(|x| x == v)),
                Op::NotIn(xs) => !v.is_some_and(|v| xs.iter().any(|x| x == v)),
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
                Op::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *n),
                Op::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *n),
            }
        })
    }
}

/// A parsed field selector: `path=value`, `path==value`, `path!=value`, comma = AND.
#[derive(Debug, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

/// Field labels the apiserver accepts per resource (beyond `metadata.name`/`metadata.namespace`).
fn supported_fields(rt: &ResourceType) -> &'static [&'static str] {
    match (rt.group, rt.plural) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "namespaces") => &["status.phase"],
        ("batch", "jobs") => &["status.successful"],
        _ => &[],
    }
}

impl FieldSelector {
    pub fn parse(s: &str, rt: &ResourceType) -> Result<Self, String> {
        let mut terms = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, eq, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                ));
            };
            let field = field.trim();
            if field != "metadata.name"
                && field != "metadata.namespace"
                && !supported_fields(rt).contains(&field)
            {
                return Err(format!("field label not supported: {field}"));
            }
            terms.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector(terms))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(field, eq, want)| {
            let got = field.split('.').try_fold(obj, |v, part| v.get(part));
            let got = match got {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(v) => v.to_string(),
            };
            (got == *want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operators_mean_what_the_apiserver_means() {
        let labels = json!({"app": "db", "tier": "backend", "n": "5"});
        let yes = |s: &str| LabelSelector::parse(s).unwrap().matches(Some(&labels));
        assert!(yes("app=db") && yes("app==db") && yes("app!=web") && yes("missing!=x"));
        assert!(yes("app in (db, web)") && yes("app notin (web)") && yes("missing notin (x)"));
        assert!(
            yes("app") && yes("!missing") && yes("app=db,tier=backend") && yes("n>4") && yes("n<6")
        );
        assert!(!yes("app=web") && !yes("missing in (x)") && !yes("!app") && !yes("app,missing"));
        assert_eq!(
            LabelSelector::parse("app in db").unwrap_err(),
            "unable to parse requirement: found 'db', expected: '('"
        );
        assert!(LabelSelector::parse("a=b:c").is_err());
    }
}
