//! PATCH bodies: JSON merge patch (RFC 7386, also used for strategic merge patch, which behaves
//! the same on the objects backup-ns patches) and JSON patch (RFC 6902). Kept apart from routing
//! because both are pure functions over `serde_json::Value`.

use serde_json::Value;

/// RFC 7386: `null` removes, objects merge recursively, everything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let Value::Object(target) = target else {
        return;
    };
    for (k, v) in patch {
        if v.is_null() {
            target.remove(k);
        } else {
            merge(target.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// RFC 6901 pointer to its unescaped tokens.
fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(vec![]);
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("invalid JSON pointer {pointer:?}"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn index(token: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    if allow_end && token == "-" {
        return Ok(len);
    }
    match token.parse::<usize>() {
        Ok(i) if i < len || (allow_end && i == len) => Ok(i),
        _ => Err(format!("array index {token:?} out of bounds")),
    }
}

fn parent<'a>(doc: &'a mut Value, path: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for t in path {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(t)
                .ok_or_else(|| format!("path element {t:?} not found"))?,
            Value::Array(a) => {
                let len = a.len();
                &mut a[index(t, len, false)?]
            }
            _ => return Err(format!("path element {t:?} is not a container")),
        };
    }
    Ok(cur)
}

fn get<'a>(doc: &'a Value, pointer: &str) -> Result<&'a Value, String> {
    doc.pointer(pointer)
        .ok_or_else(|| format!("path {pointer:?} not found"))
}

fn add(doc: &mut Value, pointer: &str, value: Value) -> Result<(), String> {
    let path = tokens(pointer)?;
    let Some((last, init)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent(doc, init)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            let i = index(last, a.len(), true)?;
            a.insert(i, value);
        }
        _ => return Err(format!("cannot add at {pointer:?}")),
    }
    Ok(())
}

fn remove(doc: &mut Value, pointer: &str) -> Result<Value, String> {
    let path = tokens(pointer)?;
    let Some((last, init)) = path.split_last() else {
        return Err("cannot remove the whole document".into());
    };
    match parent(doc, init)? {
        Value::Object(m) => m
            .remove(last)
            .ok_or_else(|| format!("path {pointer:?} not found")),
        Value::Array(a) => {
            let i = index(last, a.len(), false)?;
            Ok(a.remove(i))
        }
        _ => Err(format!("path {pointer:?} not found")),
    }
}

/// RFC 6902: applies every operation or none.
pub fn json_patch(doc: &Value, ops: &Value) -> Result<Value, String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch must be an array of operations")?;
    let mut doc = doc.clone();
    for op in ops {
        let path = op["path"].as_str().ok_or("operation without \"path\"")?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| format!("operation on {path:?} without \"value\""))
        };
        let from = || {
            op["from"]
                .as_str()
                .ok_or_else(|| format!("operation on {path:?} without \"from\""))
        };
        match op["op"].as_str() {
            Some("add") => add(&mut doc, path, value()?)?,
            Some("remove") => {
                remove(&mut doc, path)?;
            }
            Some("replace") => {
                remove(&mut doc, path)?;
                add(&mut doc, path, value()?)?;
            }
            Some("test") => {
                if *get(&doc, path)? != value()? {
                    return Err(format!("testing value {path} failed: test failed"));
                }
            }
            Some("move") => {
                let v = remove(&mut doc, from()?)?;
                add(&mut doc, path, v)?;
            }
            Some("copy") => {
                let v = get(&doc, from()?)?.clone();
                add(&mut doc, path, v)?;
            }
            other => return Err(format!("unexpected kind of patch operation: {other:?}")),
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_follows_rfc7386() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge(&mut doc, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(doc, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_is_all_or_nothing() {
        let doc = json!({"m": {"k": "v"}, "l": [1]});
        let ok = json_patch(
            &doc,
            &json!([
                {"op": "test", "path": "/m/k", "value": "v"},
                {"op": "add", "path": "/l/-", "value": 2},
                {"op": "replace", "path": "/m/k", "value": "w"},
                {"op": "remove", "path": "/l/0"},
            ]),
        );
        assert_eq!(ok.unwrap(), json!({"m": {"k": "w"}, "l": [2]}));
        assert!(json_patch(&doc, &json!([{"op": "test", "path": "/m/k", "value": "x"}])).is_err());
    }
}
