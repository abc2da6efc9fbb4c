-- Image cards by repository, deactivated ones included: a first push asks whether the name was
-- ever used (retired names are not recreated), which without this index scans every card.
CREATE INDEX cards_image_repository_any ON cards ((data ->> 'repository'))
    WHERE split_part(type, '@', 1) = 'image';
