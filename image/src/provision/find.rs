//! Finding a stored image the way a user names it: besides what [`Store::resolve`] takes
//! (a full name, a reference that normalises to one, a full digest), the short digest
//! `image ls` prints and a repository name without registry or tag (`bb` for
//! `localhost/bb:1`) when exactly one image fits. An ambiguous name is an error that lists
//! (a bounded number of) the candidates.

use crate::store::{Store, StoreError, StoredImage};

use super::ProvisionError;

/// At most this many candidates are named in an ambiguity error.
const CANDIDATES_SHOWN: usize = 8;
/// The shortest digest prefix taken as a short id.
const MIN_SHORT_ID: usize = 4;

/// The stored image `query` names.
pub fn find_image(store: &Store, query: &str) -> Result<StoredImage, ProvisionError> {
    let not_found = match store.resolve(query) {
        Ok(i) => return Ok(i),
        Err(e @ StoreError::NotFound { .. }) => e,
        Err(e) => return Err(e.into()),
    };
    let images = store.images()?;
    let hex = query.strip_prefix("sha256:").unwrap_or(query);
    let short_id = hex.len() >= MIN_SHORT_ID
        && hex.len() <= 64
        && hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
    let matches: Vec<&StoredImage> = if short_id {
        images
            .iter()
            .filter(|i| i.descriptor.digest.hex().starts_with(hex))
            .collect()
    } else {
        images
            .iter()
            .filter(|i| short_name_matches(&i.name, query))
            .collect()
    };
    let Some(first) = matches.first() else {
        return Err(not_found.into());
    };
    // Several names of one manifest are one image.
    if matches
        .iter()
        .all(|i| i.descriptor.digest == first.descriptor.digest)
    {
        return Ok((*first).clone());
    }
    let mut names: Vec<String> = matches
        .iter()
        .take(CANDIDATES_SHOWN)
        .map(|i| i.name.clone())
        .collect();
    if matches.len() > CANDIDATES_SHOWN {
        names.push(format!("and {} more", matches.len() - CANDIDATES_SHOWN));
    }
    Err(ProvisionError::Ambiguous {
        query: query.to_string(),
        candidates: names.join(", "),
    })
}

/// Whether `query` (`repo`, `path/repo`, either with `:tag`) names stored `name`
/// (`registry/path/repo:tag`) leaving out its registry, and its tag when `query` has none.
fn short_name_matches(name: &str, query: &str) -> bool {
    if query.is_empty() || query.contains('@') {
        return false;
    }
    let (repo, tag) = split_tag(name);
    let (qrepo, qtag) = split_tag(query);
    if qtag.is_some() && qtag != tag {
        return false;
    }
    repo == qrepo || repo.ends_with(&format!("/{qrepo}"))
}

/// `repo:tag` → (`repo`, `tag`); a `:` before the last `/` is a registry's port.
fn split_tag(name: &str) -> (&str, Option<&str>) {
    let name = name.split('@').next().unwrap_or(name);
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => (&name[..i], Some(&name[i + 1..])),
        _ => (name, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_leave_out_the_registry_and_the_tag() {
        assert!(short_name_matches("localhost/bb:1", "bb"));
        assert!(short_name_matches("localhost/bb:1", "bb:1"));
        assert!(short_name_matches(
            "docker.io/library/alpine:3",
            "library/alpine"
        ));
        assert!(short_name_matches("reg:5000/x/bb:1", "x/bb"));
        assert!(!short_name_matches("localhost/bb:1", "bb:2"));
        assert!(!short_name_matches("localhost/abb:1", "bb"));
        assert!(!short_name_matches("localhost/bb:1", "b"));
        assert!(!short_name_matches("reg:5000/bb", "5000/bb"));
        assert_eq!(split_tag("reg:5000/bb"), ("reg:5000/bb", None));
    }

    #[test]
    fn short_ids_and_names_find_one_image_or_say_which_fit() {
        use crate::provision::tests::{add_image, env};
        let (_dir, _storage, _driver, store) = env();
        add_image(&store, "localhost/bb:1", "a");
        add_image(&store, "example.com/x/bb:2", "b");
        add_image(&store, "localhost/solo:1", "c");
        let solo = store.resolve("localhost/solo:1").unwrap();
        let hex = solo.descriptor.digest.hex().to_string();
        assert_eq!(find_image(&store, &hex[..12]).unwrap().name, solo.name);
        assert_eq!(
            find_image(&store, &format!("sha256:{}", &hex[..8]))
                .unwrap()
                .name,
            solo.name
        );
        assert_eq!(find_image(&store, "solo").unwrap().name, solo.name);
        assert_eq!(
            find_image(&store, "bb:2").unwrap().name,
            "example.com/x/bb:2"
        );
        let e = find_image(&store, "bb").unwrap_err().to_string();
        assert!(
            e.contains("localhost/bb:1") && e.contains("example.com/x/bb:2"),
            "{e}"
        );
        assert!(matches!(
            find_image(&store, "nothing"),
            Err(ProvisionError::Store(StoreError::NotFound { .. }))
        ));
        assert!(
            find_image(&store, &hex[..3]).is_err(),
            "too short to be an id"
        );
    }
}
