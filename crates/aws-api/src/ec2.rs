//! The EC2 Query protocol's XML answers: private addresses from `DescribeInstances` and the
//! code of an error answer.

use quick_xml::Reader;
use quick_xml::events::Event;

/// `(instance id, private IPv4 address)` of every instance in a `DescribeInstances` answer.
/// Only each instance's own `privateIpAddress` counts, not those of its network interfaces.
pub fn private_addresses(xml: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut reader = Reader::from_reader(xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut found = Vec::new();
    let mut current: (Option<String>, Option<String>) = (None, None);
    let mut buffer = Vec::new();
    loop {
        match reader.read_event_into(&mut buffer) {
            Ok(Event::Start(element)) => path.push(element.local_name().as_ref().to_vec()),
            Ok(Event::End(_)) => {
                if is_instance_item(&path) {
                    if let (Some(id), Some(ip)) = current.clone() {
                        found.push((id, ip));
                    }
                    current = (None, None);
                }
                path.pop();
            }
            Ok(Event::Text(text)) => {
                let Some((last, parent)) = path.split_last() else {
                    continue;
                };
                if !is_instance_item(parent) {
                    continue;
                }
                let value = text
                    .decode()
                    .map_err(|e| format!("invalid XML text: {e}"))?
                    .trim()
                    .to_owned();
                match last.as_slice() {
                    b"instanceId" => current.0 = Some(value),
                    b"privateIpAddress" => current.1 = Some(value),
                    _ => {}
                }
            }
            Ok(Event::Eof) => return Ok(found),
            Ok(_) => {}
            Err(error) => return Err(format!("invalid XML: {error}")),
        }
        buffer.clear();
    }
}

/// Whether `path` ends at an instance: `.../instancesSet/item`.
fn is_instance_item(path: &[Vec<u8>]) -> bool {
    path.len() >= 2 && path[path.len() - 1] == b"item" && path[path.len() - 2] == b"instancesSet"
}

/// `(code, message)` of an EC2 error answer (`<Response><Errors><Error><Code>`).
pub fn xml_error(xml: &[u8]) -> Option<(String, String)> {
    let mut reader = Reader::from_reader(xml);
    let mut buffer = Vec::new();
    let mut inside: Option<Vec<u8>> = None;
    let (mut code, mut message) = (None, String::new());
    loop {
        match reader.read_event_into(&mut buffer) {
            Ok(Event::Start(element)) => inside = Some(element.local_name().as_ref().to_vec()),
            Ok(Event::End(_)) => inside = None,
            Ok(Event::Text(text)) => {
                let value = text.decode().ok()?.trim().to_owned();
                match inside.as_deref() {
                    Some(b"Code") => code = Some(value),
                    Some(b"Message") => message = value,
                    _ => {}
                }
            }
            Ok(Event::Eof) | Err(_) => return code.map(|c| (c, message)),
            Ok(_) => {}
        }
        buffer.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_instances_own_private_address() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r</requestId>
  <reservationSet><item><reservationId>r-1</reservationId><instancesSet>
    <item>
      <instanceId>i-aaa</instanceId>
      <networkInterfaceSet><item><privateIpAddress>10.0.9.9</privateIpAddress></item></networkInterfaceSet>
      <privateIpAddress>10.0.1.5</privateIpAddress>
    </item>
    <item><instanceId>i-bbb</instanceId><privateIpAddress>10.0.2.6</privateIpAddress></item>
    <item><instanceId>i-stopped</instanceId></item>
  </instancesSet></item></reservationSet>
</DescribeInstancesResponse>"#;
        assert_eq!(
            private_addresses(xml).expect("valid"),
            [
                ("i-aaa".to_owned(), "10.0.1.5".to_owned()),
                ("i-bbb".to_owned(), "10.0.2.6".to_owned())
            ]
        );
        assert!(private_addresses(b"<a><b></a>").is_err());
    }
}
